import type { Hook } from '@oclif/core';
import { nearest, usageError } from '../shared/errors.js';
import { errorText } from './render.js';

/**
 * oclif command_not_found hook: "did you mean" for a mistyped command. It suggests and exits 2
 * (usage) and never runs the suggestion: a typo must not turn into `sbx rm` on Enter, as
 * @oclif/plugin-not-found's prompt (default yes) would do.
 */
const hook: Hook<'command_not_found'> = async (options) => {
  const ids = options.config.commands.filter((c) => !c.hidden).map((c) => c.id.replaceAll(':', ' '));
  const typed = options.id.replaceAll(':', ' ');
  const suggestion = nearest(typed, ids);
  const err = usageError(
    `"${typed}" is not an sbx command.`,
    `${suggestion ? `did you mean \`sbx ${suggestion}\`? ` : ''}See \`sbx help\` for the list.`,
  );
  process.stderr.write(`${errorText(err)}\n`);
  process.exit(err.exitCode);
};

export default hook;
