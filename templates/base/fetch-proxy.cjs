// Node's built-in fetch ignores HTTP(S)_PROXY before Node 24, so in a sandbox (whose only way out is
// sbx's egress proxy) it would fail. Loaded into every node process (NODE_OPTIONS) when a proxy is
// set: routes fetch through it, honouring NO_PROXY. Programs with their own proxy handling keep it.
if (process.env.HTTPS_PROXY || process.env.HTTP_PROXY) {
  const emitWarning = process.emitWarning;
  try {
    const { setGlobalDispatcher, EnvHttpProxyAgent } = require('/usr/local/lib/node_modules/undici');
    // Its "experimental" warning would land on the stderr of every node program.
    process.emitWarning = (warning, ...rest) =>
      (rest[0]?.code ?? rest[1]) === 'UNDICI-EHPA' ? undefined : emitWarning.call(process, warning, ...rest);
    setGlobalDispatcher(new EnvHttpProxyAgent());
  } catch {
    // undici missing from a custom image: fetch stays as it is.
  } finally {
    process.emitWarning = emitWarning;
  }
}
