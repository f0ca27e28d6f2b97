// jsdom lacks WebCrypto's getRandomValues, which @tauri-apps/api/mocks needs.
import { webcrypto } from "node:crypto";

if (!globalThis.crypto?.getRandomValues) {
  Object.defineProperty(globalThis, "crypto", { value: webcrypto });
}
