// Builds the dashboard into dist/ (index.html + hashed assets/), which `clisonix serve` serves.
// `npm run dev` proxies the API and the live WebSocket to a server on localhost:8030.
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: false,
    // No inline scripts or data: modules: the CSP allows scripts from 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      "/api": { target: "http://127.0.0.1:8030", ws: true },
      "/metrics": "http://127.0.0.1:8030",
    },
  },
});
