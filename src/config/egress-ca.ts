/**
 * sbx's certificate authority, one per engine, kept on the host in sbx's config folder (its key
 * readable by the user only; it never enters a container). It signs the certificates the egress
 * proxy presents for the hosts it injects secrets into; sandboxes trust its certificate.
 * Keys are made by node's crypto, certificates by node-forge (loaded only when needed).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { SbxError } from '../shared/errors.js';
import { configDir } from './config.js';

export interface KeyPair {
  cert: string;
  key: string;
}

const DAY = 86_400_000;

async function forge() {
  return (await import('node-forge')).default;
}

function rsaKeys(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
}

/** A new self-signed CA certificate and its key (valid ten years). */
export async function makeCa(commonName: string): Promise<KeyPair> {
  const { pki, md } = await forge();
  const keys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(keys.publicKey);
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - DAY);
  cert.validity.notAfter = new Date(Date.now() + 3650 * DAY);
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'sbx' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(pki.privateKeyFromPem(keys.privateKey), md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: keys.privateKey };
}

/** A server certificate for these host names (and `*.domain` patterns), signed by the CA; valid 90 days. */
export async function issueLeaf(ca: KeyPair, hosts: string[]): Promise<KeyPair> {
  const { pki, md } = await forge();
  const caCert = pki.certificateFromPem(ca.cert);
  const keys = rsaKeys();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(keys.publicKey);
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - DAY);
  cert.validity.notAfter = new Date(Date.now() + 90 * DAY);
  cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'sbx' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(pki.privateKeyFromPem(ca.key), md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: keys.privateKey };
}

/** The folder of an engine's CA; `engine` is a file-name-safe key of the engine (see the network layer). */
export const caDir = (engine: string) => join(configDir(), 'ca', engine);

/** The engine's CA, made on first use. A key others can read is refused: it could sign for any host. */
export async function egressCa(engine: string): Promise<KeyPair & { certFile: string; keyFile: string }> {
  const dir = caDir(engine);
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  if (!existsSync(keyFile) || !existsSync(certFile)) {
    const ca = await makeCa(`sbx egress CA (${engine})`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, ca.key, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, ca.cert, { mode: 0o644 });
    return { ...ca, certFile, keyFile };
  }
  const problem = caProblem(engine);
  if (problem)
    throw new SbxError('config', `sbx's certificate authority cannot be used: ${problem}.`, {
      hint: `Make the key yours alone (chmod 600 ${keyFile}), or remove ${dir} so sbx makes a new one (sandboxes made since trust the old one: recreate them).`,
    });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** What is wrong with an engine's CA files (for doctor too); undefined when there is none yet or it is fine. */
export function caProblem(engine: string): string | undefined {
  const keyFile = join(caDir(engine), 'ca.key');
  if (!existsSync(keyFile)) return undefined;
  const mode = statSync(keyFile).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0)
    return `its key ${keyFile} can be read by other users (mode ${mode.toString(8)})`;
  try {
    readFileSync(keyFile, 'utf8');
    readFileSync(join(caDir(engine), 'ca.crt'), 'utf8');
  } catch (err) {
    return `its files cannot be read (${(err as Error).message})`;
  }
  return undefined;
}
