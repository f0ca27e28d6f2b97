import { defineConfig } from "vitest/config";

// The app loads the built files from disk (tauri.conf.json `frontendDist`), never a dev
// server. No inline scripts or styles, so the strict CSP holds.
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["src/test-setup.ts"],
  },
});
