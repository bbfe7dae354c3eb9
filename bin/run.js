#!/usr/bin/env node
// The plain forms of the commands typed most skip oclif's start-up (see src/cli/fast.ts); anything
// else, and any error, goes through oclif.
// Node 22.1 and later keep compiled modules on disk between runs (Node 20 has no such cache).
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const args = process.argv.slice(2);
// `sbx -H HOST CMD ...` as with docker: the engine flags may come first; oclif reads them after the command.
const lead = [];
while (/^(-H|--host|--context)(=|$)/.test(args[0] ?? '')) {
  const flag = args.shift();
  lead.push(flag);
  if (!flag.includes('=') && args.length > 0) lead.push(args.shift());
}
if (lead.length > 0) {
  const split = args.indexOf('--');
  args.splice(split === -1 ? args.length : split, 0, ...lead);
  process.argv.splice(2, Number.POSITIVE_INFINITY, ...args);
}
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  const { readFileSync } = await import('node:fs');
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`sbx/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
} else {
  const fast =
    (args[0] === 'run' || args[0] === 'ls' || (args[0] === 'template' && args[1] === 'build')) &&
    !args.includes('--debug')
      ? await (await import('../dist/src/cli/fast.js')).fastPath(args)
      : undefined;
  if (fast !== undefined) process.exitCode = fast;
  else {
    const { execute } = await import('@oclif/core');
    await execute({ dir: import.meta.url });
  }
}
