import { defineConfig } from "vite";

// The console is served by the gateway from the same origin as /api; in
// `vite dev` the API is proxied to a running gridd gateway.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inline script anywhere (the CSP forbids it): no preload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
  },
  server: { proxy: { "/api": "http://127.0.0.1:7480", "/config.json": "http://127.0.0.1:7480" } },
});
