/**
 * ostree-sysext: manage systemd system extensions on OSTree systems, over a native
 * libostree binding.
 * @module
 */
export { AbortError, ArgumentError, OstreeError, isOstreeError, codeFromGError } from './errors.js';
export type { OstreeErrorCode, OstreeErrorDetails } from './errors.js';
export { Repo, Transaction, DevInoCache, variant } from './repo.js';
export type {
  RepoMode,
  CallOptions,
  OpenOptions,
  CreateOptions,
  MetadataValue,
  TypedVariant,
  Commit,
  CommitEntry,
  CommitOptions,
  CheckoutOptions,
  TransactionStats,
  PruneResult,
  FsckProblem,
  FsckResult,
  QueryOp,
  QueryResult,
} from './repo.js';
export { Sysroot } from './sysroot.js';
export type { Deployment } from './sysroot.js';
