/**
 * ostree-sysext: manage systemd system extensions on OSTree systems, over a native
 * libostree binding. The reference is grouped by what you are doing:
 *
 * - **Binding**: {@link Repo}, {@link Sysroot} — repositories, commits, pulls, signatures.
 * - **Extensions**: {@link parseRelease}, {@link checkCompatibility}, {@link validateExtension},
 *   {@link ExtensionStore} and builders — what an extension is, whether it fits an OS exactly
 *   as systemd-sysext decides, installed extensions and where they came from.
 * - **Sets and plugins**: {@link Host}, {@link DeploymentSet}, plugins, {@link applySet} — the
 *   extensions chosen for a base, voted on and applied.
 * - **Merging**: {@link mergeOffline}, {@link overlayView}, {@link sysext} — the merged view,
 *   offline or live with systemd-sysext.
 * - **Errors**: {@link OstreeError}, {@link ExtensionError} and their stable codes.
 *
 * @categoryDescription Binding
 * The libostree binding: {@link Repo} (commits, reads, checkouts, pulls, signatures) and {@link Sysroot}.
 * @categoryDescription Extensions
 * What an extension is and whether it fits an OS ({@link checkCompatibility}), installed extensions ({@link ExtensionStore}) and builders.
 * @categoryDescription Sets and plugins
 * Deployment sets for a base, the plugins that vote on them, and applying them on a host ({@link Host}).
 * @categoryDescription Merging
 * The merged view systemd-sysext shows: offline into a directory or commit, or live with systemd-sysext.
 * @categoryDescription Errors
 * Error classes with a stable `code` to branch on.
 * @module
 */
export { AbortError, ArgumentError, OstreeError, isOstreeError, codeFromGError } from './errors.js';
export type { OstreeErrorCode, OstreeErrorDetails } from './errors.js';
export { ExtensionError, isExtensionError, MAX_RELEASE_BYTES } from './errors-domain.js';
export type { ExtensionErrorCode, KnownExtensionErrorCode, ExtensionErrorOptions, ExtensionErrorProblem } from './errors-domain.js';

export { Repo, Transaction, DevInoCache, variant, SYNC_READ_LIMIT } from './repo.js';
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
  QueryRequest,
} from './repo.js';
export type {
  RemoteConfig,
  AddRemoteOptions,
  ChangeRemoteOptions,
  RemoteInfo,
  DeleteRemoteOptions,
  RemoteFetchOptions,
  RemoteSummary,
  PullProgress,
  PullOptions,
  PullLocalOptions,
  PullResult,
  SignOptions,
  VerifyOptions,
  Signature,
  VerifyResult,
  SummaryOptions,
  DeltaOptions,
} from './remote.js';
export { DEFAULT_PULL_MAX_BYTES, DEFAULT_PULL_MAX_OBJECT_BYTES } from './remote.js';
export { Sysroot } from './sysroot.js';
export type { Deployment } from './sysroot.js';

export { parseRelease, formatRelease, isValidFieldName, releaseFilePath, RELEASE_DIRS } from './release.js';
export type { ParsedRelease, ParseReleaseOptions, ReleaseProblem, ReleaseProblemCode } from './release.js';
export {
  checkCompatibility,
  compareVersions,
  sortExtensionNames,
  detectSystemd,
  detectSystemdVersion,
  parseSystemdVersion,
  systemdRules,
  systemdArchitecture,
  nodeArchToSystemd,
  DEFAULT_SYSTEMD_VERSION,
} from './compat.js';
export type {
  CompatibilityCode,
  CompatibilityOptions,
  CompatibilityReason,
  CompatibilityResult,
  DetectSystemdVersionOptions,
  ExtensionKind,
  ExtensionScope,
  SystemdInfo,
} from './compat.js';
export { validateExtension, assertValidExtension, directoryReader, findOsRelease, isValidExtensionName, extensionNameProblem } from './validate.js';
export type { TreeEntry, TreeReader, ValidationCode, ValidationProblem, ValidationResult, ValidateExtensionOptions, OsReleaseFile } from './validate.js';
export { commitReader } from './commit-reader.js';
export { baseFromDirectory, baseFromCommit, baseFromDeployment } from './base.js';
export type { Base, BaseSource } from './base.js';

export { ExtensionStore, META_SET_EXTENSIONS } from './store.js';
export type { ExtensionOrigin, ExtensionState, InstalledExtension, InstallOptions, UpgradeOutcome } from './store.js';
export { directoryBuilder, archiveBuilder, remoteBuilder, directoryFingerprint, fileSha256 } from './builders.js';
export type { Builder, BuilderContext, BuildOutput, BuildRequest, UpdateCheck, UpdateStatus } from './builders.js';
export {
  extensionRef,
  setRef,
  escapeRefComponent,
  unescapeRefComponent,
  nameFromExtensionRef,
  EXTENSION_REF_PREFIX,
  SET_REF_PREFIX,
  KEEP_REF_PREFIX,
  keepRef,
} from './refs.js';

export {
  runVote,
  runDeployFinish,
  executablePlugin,
  loadPluginDirectory,
  releaseCompatibilityPlugin,
  DEFAULT_PLUGIN_TIMEOUT_MS,
  modulePlugin,
  canonicalizeState,
  PLUGIN_PROTOCOL,
} from './plugins.js';
export type { Plugin, PluginContext, DeployContext, SetMember, Vote, VoteAnswer, VoteReport, Verdict } from './plugins.js';
export { Overlay, overlayView, fileConflictPlugin, ambiguousNames, unrepresentable, walk, HIERARCHIES } from './overlay.js';
export type {
  OverlayEntry,
  OverlayConflict,
  OverlayConflictKind,
  OverlayExtension,
  OverlayMember,
  OverlayOptions,
  OverlayWriteStats,
  SkippedHierarchy,
  FileConflict,
} from './overlay.js';
export { DeploymentSet, SetRefusedError, META_SET_BASE, META_SET_VOTES, META_SET_ROLLBACK_OF, BASE_PLUGIN_DIR } from './deployment-set.js';
export type { DeploymentSetOptions, SetCommitResult, SetRecord } from './deployment-set.js';
export { mergeOffline, mergedHierarchies } from './merge.js';
export type { MergeExtension, MergeOptions, MergeResult, SkippedExtension } from './merge.js';
export { applySet, deactivate, boundSet, activeSet, cleanupSetCheckouts, layout, replaceSymlink, ACTIVE_SET_LINK, ACTIVATION_LINKS } from './activate.js';
export type { ApplyOptions, ApplyResult, SetLayout } from './activate.js';
export { Host } from './host.js';
export type { HostOptions, HostCallOptions, HostUpgradeResult, SetChange } from './host.js';
export {
  sysext,
  mergedExtensions,
  listImages,
  mergeableHierarchies,
  sysextEnvironment,
  writeServiceEnvironment,
  SERVICE_ENVIRONMENT_FILE,
  SysextError,
} from './sysext.js';
export type { SysextAction, SysextOptions } from './sysext.js';
export { mergeAndVerify, sysextDriver, CommandDriver, VarlinkDriver, SysextDriverError, SYSEXT_VARLINK_SOCKET } from './sysext-driver.js';
export type { SysextDriver, SysextDriverOptions, SysextImage, DriverCallOptions, DriverResult } from './sysext-driver.js';
