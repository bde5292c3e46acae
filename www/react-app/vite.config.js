// The React demo, built against the packed npm package (scripts/build.sh extracts `npm pack ./pkg`
// into www/react-app/node_modules/authwire) and served by the dev server at /react/.
import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/react/",
  logLevel: "warn",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: fileURLToPath(new URL("../react", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
  },
});
