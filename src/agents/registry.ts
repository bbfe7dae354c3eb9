import { nearest, usageError } from '../cli/errors.js';

/**
 * One entry per agent. Adding an agent is one entry here plus one folder in templates/ whose
 * Dockerfile installs it (and, optionally, a prepare.sh that pre-answers its first-run questions).
 */
export interface AgentSpec {
  name: string;
  description: string;
  /** Built-in template (folder under templates/) that has this agent installed. */
  template: string;
  /** The launch command, with the flag that turns off the agent's own permission prompts. */
  command: string[];
  /** Arguments after -- replace the command instead of being appended (the shell runs them). */
  argsAreCommand?: boolean;
  /** Environment the agent always gets inside the sandbox. */
  env: Record<string, string>;
  /** Agent state, relative to the agent user's home: logins, settings, history. */
  stateDirs: string[];
  /** Host variables forwarded to this agent (and no other) when set: API keys and tokens. */
  apiKeyEnv: string[];
  /** Hosts the agent needs when the network policy is deny-by-default. */
  allowedHosts: string[];
}

const PACKAGE_HOSTS = [
  'registry.npmjs.org',
  'pypi.org',
  'files.pythonhosted.org',
  'github.com',
  '*.github.com',
  '*.githubusercontent.com',
];

export const AGENTS: readonly AgentSpec[] = [
  {
    name: 'claude',
    description: 'Claude Code (Anthropic)',
    template: 'claude',
    command: ['claude', '--dangerously-skip-permissions'],
    env: { DISABLE_AUTOUPDATER: '1' },
    stateDirs: ['.claude', '.claude.json'],
    apiKeyEnv: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN', 'ANTHROPIC_BASE_URL'],
    allowedHosts: [
      'api.anthropic.com',
      'console.anthropic.com',
      'claude.ai',
      'statsig.anthropic.com',
      ...PACKAGE_HOSTS,
    ],
  },
  {
    name: 'gemini',
    description: 'Gemini CLI (Google)',
    template: 'gemini',
    command: ['gemini', '--yolo'],
    env: {},
    stateDirs: ['.gemini'],
    apiKeyEnv: [
      'GEMINI_API_KEY',
      'GOOGLE_API_KEY',
      'GOOGLE_CLOUD_PROJECT',
      'GOOGLE_CLOUD_LOCATION',
      'GOOGLE_GENAI_USE_VERTEXAI',
    ],
    allowedHosts: [
      'generativelanguage.googleapis.com',
      'cloudcode-pa.googleapis.com',
      'oauth2.googleapis.com',
      'accounts.google.com',
      ...PACKAGE_HOSTS,
    ],
  },
  {
    name: 'codex',
    description: 'Codex CLI (OpenAI)',
    template: 'codex',
    command: ['codex', '--dangerously-bypass-approvals-and-sandbox'],
    env: {},
    stateDirs: ['.codex'],
    apiKeyEnv: ['OPENAI_API_KEY', 'OPENAI_BASE_URL'],
    allowedHosts: ['api.openai.com', 'auth.openai.com', 'chatgpt.com', ...PACKAGE_HOSTS],
  },
  {
    name: 'opencode',
    description: 'OpenCode',
    template: 'opencode',
    command: ['opencode'],
    env: { OPENCODE_CONFIG_CONTENT: '{"permission":"allow"}' },
    stateDirs: ['.local/share/opencode', '.config/opencode'],
    apiKeyEnv: ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY'],
    allowedHosts: [
      'opencode.ai',
      '*.opencode.ai',
      'models.dev',
      'api.anthropic.com',
      'api.openai.com',
      ...PACKAGE_HOSTS,
    ],
  },
  {
    name: 'copilot',
    description: 'GitHub Copilot CLI',
    template: 'copilot',
    command: ['copilot', '--allow-all-tools', '--allow-all-paths'],
    env: {},
    stateDirs: ['.copilot'],
    apiKeyEnv: ['COPILOT_GITHUB_TOKEN', 'GH_TOKEN', 'GITHUB_TOKEN'],
    allowedHosts: ['api.githubcopilot.com', '*.githubcopilot.com', 'api.github.com', ...PACKAGE_HOSTS],
  },
  {
    name: 'kiro',
    description: 'Kiro CLI (AWS)',
    template: 'kiro',
    command: ['kiro-cli', 'chat', '--trust-all-tools'],
    env: {},
    stateDirs: ['.kiro', '.local/share/kiro-cli', '.aws/sso'],
    apiKeyEnv: [],
    allowedHosts: ['*.kiro.dev', 'prod.us-east-1.auth.desktop.kiro.dev', '*.amazonaws.com', ...PACKAGE_HOSTS],
  },
  {
    name: 'shell',
    description: 'A login bash shell, no agent',
    template: 'base',
    command: ['bash', '-l'],
    argsAreCommand: true,
    env: {},
    stateDirs: [],
    apiKeyEnv: [],
    allowedHosts: PACKAGE_HOSTS,
  },
];

/** The command line that launches the agent with the user's arguments. */
export const launchCommand = (agent: AgentSpec, args: readonly string[]): string[] =>
  agent.argsAreCommand && args.length > 0 ? [...args] : [...agent.command, ...args];

export const agentNames = () => AGENTS.map((a) => a.name);

export function getAgent(name: string): AgentSpec {
  const agent = AGENTS.find((a) => a.name === name);
  if (agent) return agent;
  const suggestion = nearest(name, agentNames());
  throw usageError(
    `Unknown agent "${name}". sbx knows: ${agentNames().join(', ')}.`,
    suggestion
      ? `Did you mean \`${suggestion}\`?`
      : 'Run `sbx run --help` to see them with their descriptions.',
  );
}
