import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hook } from '@oclif/core';

/** Commands whose argument is a sandbox: completion offers the names `sbx ls -q` prints. */
export const SANDBOX_COMMANDS = ['exec', 'inspect', 'ports', 'rm', 'shell', 'start', 'stop'];

const MARKER = '# sbx: sandbox names';

const bash = (bin: string) => `
${MARKER} for the commands that take one (added to the plugin's completion).
_${bin}_with_sandboxes()
{
  _${bin}_autocomplete
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" != -* && $COMP_CWORD -ge 2 ]]; then
    case "\${COMP_WORDS[1]}" in
      ${SANDBOX_COMMANDS.join('|')})
        COMPREPLY+=($(compgen -W "$(${bin} ls -q 2>/dev/null)" -- "$cur")) ;;
    esac
  fi
}
complete -F _${bin}_with_sandboxes ${bin}
`;

/**
 * The zsh function is one case branch per command ending in "*: :_files": for the commands that
 * take a sandbox, that becomes a function offering the names.
 */
export function addSandboxNamesToZsh(script: string, bin: string): string {
  if (script.includes(MARKER)) return script;
  let out = script;
  for (const command of SANDBOX_COMMANDS) {
    out = out.replace(
      new RegExp(`(^${command}\\)\\n[\\s\\S]*?)"\\*: :_files" ;;`, 'm'),
      `$1"*: :_${bin}_sandbox_names" ;;`,
    );
  }
  return out.replace(
    /^(#compdef .*\n)/,
    `$1\n${MARKER} for the commands that take one (added to the plugin's completion).\n_${bin}_sandbox_names() {\n  local -a names; names=(\${(f)"$(${bin} ls -q 2>/dev/null)"})\n  compadd -a names\n}\n`,
  );
}

/**
 * oclif postrun hook: after @oclif/plugin-autocomplete has written its completion functions (which
 * know commands and flags only), adds sandbox names to them. Runs once per cache refresh.
 */
const hook: Hook<'postrun'> = async (options) => {
  if (options.Command.id !== 'autocomplete' && options.Command.id !== 'autocomplete:create') return;
  const bin = options.config.bin;
  const dir = join(options.config.cacheDir, 'autocomplete', 'functions');
  const bashFile = join(dir, 'bash', `${bin}.bash`);
  const bashScript = await readFile(bashFile, 'utf8').catch(() => undefined);
  if (bashScript !== undefined && !bashScript.includes(MARKER)) await appendFile(bashFile, bash(bin));
  const zshFile = join(dir, 'zsh', `_${bin}`);
  const zshScript = await readFile(zshFile, 'utf8').catch(() => undefined);
  if (zshScript !== undefined) await writeFile(zshFile, addSandboxNamesToZsh(zshScript, bin));
};

export default hook;
