/**
 * What an engine's error means, decided here and nowhere else: Docker and Podman answer the same
 * situation with different statuses and words (a name taken is 409 on Docker, 500 "is already in
 * use" on Podman), and the layers above ask only what happened.
 */
export const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

const said = (err: unknown, pattern: RegExp) => pattern.test(String((err as Error)?.message ?? ''));

/**
 * The object does not exist: 404; Podman answers 500 "... does not exist in database: no such
 * container" when an object goes while it is being looked up (a name found, then removed by another).
 */
export const isMissing = (err: unknown) =>
  statusOf(err) === 404 || (statusOf(err) === 500 && said(err, /does not exist in database/));

/** A container name already taken: Docker 409, Podman 500 "... is already in use". */
export const isNameTaken = (err: unknown) => statusOf(err) === 409 || said(err, /name .* is already in use/);

/** Another caller is removing that container (409 "removal ... is already in progress"): it is going. */
export const isRemovalInProgress = (err: unknown) =>
  statusOf(err) === 409 && said(err, /already in progress/);

/** Start or stop of a container already in that state. */
export const isNotModified = (err: unknown) => statusOf(err) === 304;

/** A volume some container still uses. */
export const isInUse = (err: unknown) => statusOf(err) === 409;

/** Connecting a container to a network it is already on. */
export const isAlreadyConnected = (err: unknown) =>
  statusOf(err) === 403 && said(err, /already exists|already attached/i);

/** A fixed address on a network that another container holds. */
export const isAddressTaken = (err: unknown) => said(err, /already (in use|allocated)/i);

/** A subnet that overlaps one the engine already has. */
export const isSubnetTaken = (err: unknown) => said(err, /overlap|in use|already/i);

/** The engine refused to bind a host path it does not have (a remote engine's machine lacks it). */
export const isBindRefused = (err: unknown) => [400, 404, 500].includes(statusOf(err) ?? 0);
