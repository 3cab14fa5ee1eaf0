// The bundle is committed (services/gateway/src/gateway/static/web) and checked to be current, so
// a build must give the same bytes for the same sources and lock: fixed file names, no hashes that
// depend on anything but content, no timestamps, no source maps with absolute paths.
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

export default defineConfig({
  plugins: [preact()],
  base: "/",
  // `npm run dev`: the API and the socket of a gateway started by `make up`.
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
  build: {
    // `npm run build -- --outDir <dir>` builds elsewhere (the freshness check compares the two).
    outDir: "../services/gateway/src/gateway/static/web",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    modulePreload: false,
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
});
