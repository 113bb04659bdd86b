// Global setup: servers shared by every test file are started here (see test/helpers/*).
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
