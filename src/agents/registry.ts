import { nearest, usageError } from '../shared/errors.js';

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
  /** Where the agent keeps its state (logins, settings, history); see AgentState. */
  state: AgentState | undefined;
  /** Host variables forwarded to this agent (and no other) when set: API keys and tokens. */
  apiKeyEnv: string[];
  /** Hosts the agent needs when the network policy is deny-by-default. */
  allowedHosts: string[];
  /**
   * Keys of apiKeyEnv the egress proxy injects instead (config agentKeys, default proxy): the
   * sandbox gets a placeholder in the variable, the proxy puts the host's value into this header
   * on requests to these hosts.
   */
  injectedKeys?: KeyBinding[];
}

/** An API key the proxy puts into requests: where (hosts, header) and how (`{}` is the key). */
export interface KeyBinding {
  env: string;
  hosts: string[];
  header: string;
  format: string;
  /** A query parameter some clients send it in instead (the placeholder there is replaced too). */
  query?: string;
  /** Only where the client sends the placeholder; never added to a request without the header. */
  replaceOnly?: boolean;
}

/** The keys' endpoints and headers, as the agents' SDKs send them (checked against the installed versions). */
const ANTHROPIC_KEYS: KeyBinding[] = [
  { env: 'ANTHROPIC_API_KEY', hosts: ['api.anthropic.com'], header: 'x-api-key', format: '{}' },
  {
    env: 'CLAUDE_CODE_OAUTH_TOKEN',
    hosts: ['api.anthropic.com'],
    header: 'authorization',
    format: 'Bearer {}',
  },
  { env: 'ANTHROPIC_AUTH_TOKEN', hosts: ['api.anthropic.com'], header: 'authorization', format: 'Bearer {}' },
];
const OPENAI_KEYS: KeyBinding[] = [
  { env: 'OPENAI_API_KEY', hosts: ['api.openai.com'], header: 'authorization', format: 'Bearer {}' },
];
const GEMINI_KEYS: KeyBinding[] = [
  {
    env: 'GEMINI_API_KEY',
    hosts: ['generativelanguage.googleapis.com'],
    header: 'x-goog-api-key',
    format: '{}',
    query: 'key',
  },
];
/**
 * GitHub tokens, in the order Copilot CLI reads them (checked in its 1.0.102 bundle): sent as
 * `Authorization: token …` to api.github.com and `Bearer …` to the Copilot API hosts, and by git as
 * Basic `x-access-token:…` to github.com (the credential helper sbx configures answers the placeholder).
 * Replace-only: github.com answers 401 to a Bearer token on git's and its web endpoints, so an
 * anonymous request (a public clone, a release download) must stay anonymous.
 */
const GITHUB_HOSTS = [
  'github.com',
  'api.github.com',
  'api.githubcopilot.com',
  'api.individual.githubcopilot.com',
  'api.business.githubcopilot.com',
  'api.enterprise.githubcopilot.com',
];
const GITHUB_KEYS: KeyBinding[] = ['COPILOT_GITHUB_TOKEN', 'GH_TOKEN', 'GITHUB_TOKEN'].map((env) => ({
  env,
  hosts: GITHUB_HOSTS,
  header: 'authorization',
  format: 'Bearer {}',
  replaceOnly: true,
}));

/**
 * An agent's state. Paths are relative to the home folder (the same layout on the host and in the
 * sandbox). Only the login (credentials) is shared between one host user's sandboxes of the agent,
 * through that user's login volume; everything else (settings, hooks, instructions, plugins,
 * history) stays with the sandbox.
 */
export interface AgentState {
  /** The agent's folder: it stays in the sandbox (its own, per workspace). */
  dir: string;
  /** A variable that makes the agent keep all of its state in dir (set to dir's full path). */
  dirEnv?: string;
  /**
   * The login: files (or a folder) the agent keeps its credentials in, and nothing that configures
   * or runs anything. Each is kept in the user's login volume at the same relative path and linked
   * into the sandbox's home.
   */
  credentials: string[];
  /**
   * A variable that makes the agent keep its login in a folder of its own (set to the login
   * volume's copy of credentials[0]'s folder): the agent writes there directly, even by renaming.
   */
  credentialsEnv?: string;
  /** What `--credentials host` mounts from the host's home. */
  host: string[];
  /** Files whose presence means logged in (undefined: not detectable). */
  login?: string[];
  /** User instructions and customisations `--sync-config` copies in from the host. */
  sync: string[];
  /** The host's login for `auth import`: [host path, path in the login volume]. */
  import: Array<[string, string]>;
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
    state: {
      dir: '.claude',
      dirEnv: 'CLAUDE_CONFIG_DIR',
      // Claude Code saves its login by writing a new file and renaming it: CLAUDE_SECURESTORAGE_CONFIG_DIR
      // puts that in the login volume (a link would be replaced). Not .claude.json: it holds MCP servers.
      credentials: ['.claude/.credentials.json'],
      credentialsEnv: 'CLAUDE_SECURESTORAGE_CONFIG_DIR',
      host: ['.claude', '.claude.json'],
      login: ['.claude/.credentials.json'],
      sync: [
        '.claude/CLAUDE.md',
        '.claude/settings.json',
        '.claude/commands',
        '.claude/agents',
        '.claude/skills',
      ],
      import: [['.claude/.credentials.json', '.claude/.credentials.json']],
    },
    apiKeyEnv: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN', 'ANTHROPIC_BASE_URL'],
    injectedKeys: ANTHROPIC_KEYS,
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
    state: {
      dir: '.gemini',
      credentials: ['.gemini/oauth_creds.json', '.gemini/google_accounts.json'],
      host: ['.gemini'],
      login: ['.gemini/oauth_creds.json'],
      sync: ['.gemini/GEMINI.md', '.gemini/settings.json', '.gemini/commands', '.gemini/extensions'],
      import: [
        ['.gemini/oauth_creds.json', '.gemini/oauth_creds.json'],
        ['.gemini/google_accounts.json', '.gemini/google_accounts.json'],
      ],
    },
    apiKeyEnv: [
      'GEMINI_API_KEY',
      'GOOGLE_API_KEY',
      'GOOGLE_CLOUD_PROJECT',
      'GOOGLE_CLOUD_LOCATION',
      'GOOGLE_GENAI_USE_VERTEXAI',
    ],
    injectedKeys: GEMINI_KEYS,
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
    state: {
      dir: '.codex',
      dirEnv: 'CODEX_HOME',
      credentials: ['.codex/auth.json'],
      host: ['.codex'],
      login: ['.codex/auth.json'],
      sync: ['.codex/AGENTS.md', '.codex/config.toml', '.codex/prompts'],
      import: [['.codex/auth.json', '.codex/auth.json']],
    },
    apiKeyEnv: ['OPENAI_API_KEY', 'OPENAI_BASE_URL'],
    injectedKeys: OPENAI_KEYS,
    allowedHosts: ['api.openai.com', 'auth.openai.com', 'chatgpt.com', ...PACKAGE_HOSTS],
  },
  {
    name: 'opencode',
    description: 'OpenCode',
    template: 'opencode',
    command: ['opencode'],
    env: { OPENCODE_CONFIG_CONTENT: '{"permission":"allow"}' },
    state: {
      dir: '.local/share/opencode',
      credentials: ['.local/share/opencode/auth.json'],
      host: ['.local/share/opencode', '.config/opencode'],
      login: ['.local/share/opencode/auth.json'],
      sync: ['.config/opencode'],
      import: [['.local/share/opencode/auth.json', '.local/share/opencode/auth.json']],
    },
    apiKeyEnv: ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY'],
    injectedKeys: [...ANTHROPIC_KEYS, ...OPENAI_KEYS, ...GEMINI_KEYS],
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
    state: {
      dir: '.copilot',
      // Its login, when no keychain is there; the file also holds a few display settings.
      credentials: ['.copilot/config.json'],
      host: ['.copilot'],
      sync: ['.copilot/mcp-config.json', '.copilot/agents'],
      import: [['.copilot/config.json', '.copilot/config.json']],
    },
    apiKeyEnv: ['COPILOT_GITHUB_TOKEN', 'GH_TOKEN', 'GITHUB_TOKEN'],
    injectedKeys: GITHUB_KEYS,
    allowedHosts: ['api.githubcopilot.com', '*.githubcopilot.com', 'api.github.com', ...PACKAGE_HOSTS],
  },
  {
    name: 'kiro',
    description: 'Kiro CLI (AWS)',
    template: 'kiro',
    command: ['kiro-cli', 'chat', '--trust-all-tools'],
    env: {},
    state: {
      dir: '.local/share/kiro-cli',
      credentials: ['.local/share/kiro-cli/data.sqlite3', '.aws/sso/cache'],
      host: ['.local/share/kiro-cli', '.kiro', '.aws/sso'],
      sync: ['.kiro/steering', '.kiro/settings', '.kiro/agents'],
      import: [
        ['.local/share/kiro-cli/data.sqlite3', '.local/share/kiro-cli/data.sqlite3'],
        ['.aws/sso/cache', '.aws/sso/cache'],
      ],
    },
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
    state: undefined,
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
