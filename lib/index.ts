/**
 * ostree-sysext: manage systemd system extensions on OSTree systems, over a native
 * libostree binding. The reference is grouped by what you are doing:
 *
 * - **Binding**: {@link Repo}, {@link Sysroot} — repositories, commits, pulls, signatures.
 * - **Trees**: {@link TreeReader} over a directory ({@link directoryReader}), a commit
 *   ({@link commitReader}) or the native {@link TreeView}; {@link chase}, {@link walk}.
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
 * @categoryDescription Trees
 * One interface, {@link TreeReader}, for every tree read: a directory, a commit, the merged view.
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
export { AbortError, ArgumentError, OstreeError, isOstreeError, codeFromGError } from './binding/errors.js';
export type { OstreeErrorCode, OstreeErrorDetails } from './binding/errors.js';
export { ExtensionError, isExtensionError, MAX_RELEASE_BYTES } from './extension/errors.js';
export type { ExtensionErrorCode, KnownExtensionErrorCode, ExtensionErrorOptions, ExtensionErrorProblem } from './extension/errors.js';

export { Repo, Transaction, DevInoCache, variant } from './binding/repo.js';
export { SYNC_READ_LIMIT } from './binding/read.js';
export type { Commit, CommitEntry, QueryOp, QueryResult, QueryRequest } from './binding/read.js';
export type {
  RepoMode,
  CallOptions,
  OpenOptions,
  CreateOptions,
  MetadataValue,
  TypedVariant,
  CommitOptions,
  CheckoutOptions,
  TransactionStats,
  PruneResult,
  FsckProblem,
  FsckResult,
} from './binding/repo.js';
export type {
  RemoteConfig,
  AddRemoteOptions,
  ChangeRemoteOptions,
  RemoteInfo,
  DeleteRemoteOptions,
  RemoteFetchOptions,
  RemoteSummary,
} from './binding/remote.js';
export type { PullProgress, PullOptions, PullLocalOptions, PullResult } from './binding/pull.js';
export type { SignOptions, VerifyOptions, Signature, VerifyResult, SummaryOptions, DeltaOptions } from './binding/sign.js';
export { DEFAULT_PULL_MAX_BYTES, DEFAULT_PULL_MAX_OBJECT_BYTES } from './binding/pull.js';
export { Sysroot } from './binding/sysroot.js';
export type { Deployment } from './binding/sysroot.js';

export { parseRelease, formatRelease, isValidFieldName, releaseFilePath, RELEASE_DIRS } from './extension/release.js';
export type { ParsedRelease, ParseReleaseOptions, ReleaseProblem, ReleaseProblemCode } from './extension/release.js';
export {
  checkCompatibility,
  compareVersions,
  sortExtensionNames,
  systemdRules,
  systemdArchitecture,
  nodeArchToSystemd,
  DEFAULT_SYSTEMD_VERSION,
} from './extension/compat.js';
export type {
  CompatibilityCode,
  CompatibilityOptions,
  CompatibilityReason,
  CompatibilityResult,
  ExtensionKind,
  ExtensionScope,
  SystemdInfo,
} from './extension/compat.js';
export { detectSystemd, detectSystemdVersion, parseSystemdVersion } from './extension/systemd-detect.js';
export type { DetectSystemdVersionOptions } from './extension/systemd-detect.js';
export { validateExtension, assertValidExtension, findOsRelease, isValidExtensionName, extensionNameProblem } from './extension/validate.js';
export { directoryReader } from './tree/directory.js';
export type { ValidationCode, ValidationProblem, ValidationResult, ValidateExtensionOptions, OsReleaseFile } from './extension/validate.js';
export type { TreeEntry, TreeReader } from './tree/reader.js';
export { commitReader } from './tree/commit.js';
export { verifyExtensions } from './extension/verify.js';
export type { VerifyExtensionsOptions, VerifyExtensionsResult, ExtensionVerification } from './extension/verify.js';
export { baseFromDirectory, baseFromCommit, baseFromDeployment } from './extension/base.js';
export type { Base, BaseSource } from './extension/base.js';

export { ExtensionStore } from './extension/store.js';
export { META_SET_EXTENSIONS, META_SET_BASE, META_SET_VOTES, META_SET_ROLLBACK_OF, setExtensions } from './extension/set-format.js';
export type { ExtensionOrigin, ExtensionState, InstalledExtension, InstallOptions, UpgradeOutcome } from './extension/store.js';
export { directoryBuilder, archiveBuilder, remoteBuilder, directoryFingerprint, fileSha256 } from './extension/builders.js';
export type { Builder, BuilderContext, BuildOutput, BuildRequest, UpdateCheck, UpdateStatus } from './extension/builders.js';
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
} from './extension/refs.js';

export { runVote, runDeployFinish, loadPluginDirectory, releaseCompatibilityPlugin, DEFAULT_PLUGIN_TIMEOUT_MS } from './sets/plugins.js';
export { executablePlugin, modulePlugin, canonicalizeState, PLUGIN_PROTOCOL } from './sets/plugin-sandbox.js';
export type { Plugin, PluginContext, DeployContext, SetMember, Vote, VoteAnswer, VoteReport, Verdict } from './sets/plugin.js';
export { Overlay, overlayView, fileConflictPlugin, ambiguousNames } from './sets/overlay.js';
export { unrepresentable } from './tree/view.js';
export { walk, chase, chaseInTree } from './tree/reader.js';
export type { ChaseResult } from './tree/reader.js';
export { TreeView } from './tree/view.js';
export { HIERARCHIES } from './extension/hierarchies.js';
export type { OverlayConflict, OverlayConflictKind, OverlayExtension, OverlayMember, OverlayOptions, SkippedHierarchy, FileConflict } from './sets/overlay.js';
export type { OverlayEntry, OverlayWriteStats } from './tree/view.js';
export { DeploymentSet, SetRefusedError, BASE_PLUGIN_DIR } from './sets/deployment-set.js';
export type { DeploymentSetOptions, SetCommitResult, SetRecord } from './sets/deployment-set.js';
export { mergeOffline, mergedHierarchies } from './sets/merge.js';
export type { MergeExtension, MergeOptions, MergeResult, SkippedExtension } from './sets/merge.js';
export { applySet, deactivate, boundSet, activeSet, cleanupSetCheckouts, layout, replaceSymlink, ACTIVE_SET_LINK, ACTIVATION_LINKS } from './sets/activate.js';
export type { ApplyOptions, ApplyResult, SetLayout } from './sets/activate.js';
export { Host } from './host/host.js';
export type { HostOptions, HostCallOptions, HostUpgradeResult, SetChange } from './host/host.js';
export {
  sysext,
  mergedExtensions,
  listImages,
  mergeableHierarchies,
  sysextEnvironment,
  writeServiceEnvironment,
  SERVICE_ENVIRONMENT_FILE,
  SysextError,
} from './sets/sysext.js';
export type { SysextAction, SysextOptions } from './sets/sysext.js';
export { mergeAndVerify, sysextDriver, CommandDriver, VarlinkDriver, SysextDriverError, SYSEXT_VARLINK_SOCKET } from './sets/sysext-driver.js';
export type { SysextDriver, SysextDriverOptions, SysextImage, DriverCallOptions, DriverResult } from './sets/sysext-driver.js';
