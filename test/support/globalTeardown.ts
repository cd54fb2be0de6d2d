export default async function globalTeardown(): Promise<void> {
  await globalThis.__MAIHIVE_TEST_SERVICES__?.close();
}
