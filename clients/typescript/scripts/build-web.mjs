// Builds the page served at `/` from web/src into web/dist (committed; the server embeds it):
//   web/dist/index.html   the page, linking the two assets below with ?v=<hash of their bytes>
//   web/dist/app.js       web/src/main.ts, @tripstream/client (clients/typescript/src) and Leaflet, bundled, minified
//   web/dist/app.css      web/src/styles.css with Leaflet's, minified
//   web/dist/docs/        the API reference at /docs: web/src/docs (index.html, docs.ts, docs.css) and Swagger UI
//                         from the pinned npm swagger-ui-dist (its bundle and stylesheet, and their licences)
// The hash is 64-bit FNV-1a in hex: crates/server/src/routes/page.rs computes the same one to know which
// asset URLs may be cached for good (routes/docs.rs, for /docs). Run with `npm run build:web` in clients/typescript.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, "../../../web");
const src = path.join(web, "src");
const dist = path.join(web, "dist");

// Browsers of the last few years; nothing newer than what they all run.
const target = ["es2022", "chrome109", "edge109", "firefox115", "safari16"];

function fnv1a64(bytes) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

async function bundle(entry, extra = {}) {
  const result = await esbuild.build({
    entryPoints: [path.join(src, entry)],
    bundle: true,
    minify: true,
    write: false,
    charset: "utf8",
    legalComments: "none",
    target,
    logLevel: "warning",
    // web/ has no node_modules of its own: Leaflet comes from this package's.
    nodePaths: [path.resolve(here, "../node_modules")],
    ...extra,
  });
  const [file] = result.outputFiles;
  return Buffer.from(file.contents);
}

const js = await bundle("main.ts", { format: "iife", platform: "browser", outfile: "app.js" });
// Leaflet's CSS names images only its layer switcher and default marker use; the page uses neither.
const css = await bundle("styles.css", { outfile: "app.css", external: ["*.png"] });
const html = readFileSync(path.join(src, "index.html"), "utf8")
  .replace("%APP_JS%", `/assets/app.js?v=${fnv1a64(js)}`)
  .replace("%APP_CSS%", `/assets/app.css?v=${fnv1a64(css)}`);

// The API reference: Swagger UI as its package ships it (without the source map it names, which is not
// served), and the few lines that start it on /openapi.json.
const swaggerUi = path.resolve(here, "../node_modules/swagger-ui-dist");
const withoutSourceMap = (file) =>
  Buffer.from(readFileSync(path.join(swaggerUi, file), "utf8").replace(/\n?\/[/*]# sourceMappingURL=\S+(?: \*\/)?\s*$/, "\n"));
const docs = {
  "swagger-ui-bundle.js": withoutSourceMap("swagger-ui-bundle.js"),
  "swagger-ui.css": withoutSourceMap("swagger-ui.css"),
  "docs.js": await bundle("docs/docs.ts", { format: "iife", platform: "browser", outfile: "docs.js" }),
  "docs.css": await bundle("docs/docs.css", { outfile: "docs.css" }),
};
const docsUrl = (name) => `/docs/${name}?v=${fnv1a64(docs[name])}`;
const docsHtml = readFileSync(path.join(src, "docs", "index.html"), "utf8")
  .replace("%SWAGGER_JS%", docsUrl("swagger-ui-bundle.js"))
  .replace("%SWAGGER_CSS%", docsUrl("swagger-ui.css"))
  .replace("%DOCS_JS%", docsUrl("docs.js"))
  .replace("%DOCS_CSS%", docsUrl("docs.css"));

mkdirSync(dist, { recursive: true });
for (const name of readdirSync(dist)) rmSync(path.join(dist, name), { recursive: true, force: true });
writeFileSync(path.join(dist, "app.js"), js);
writeFileSync(path.join(dist, "app.css"), css);
writeFileSync(path.join(dist, "index.html"), html);
mkdirSync(path.join(dist, "docs"));
for (const [name, bytes] of Object.entries(docs)) writeFileSync(path.join(dist, "docs", name), bytes);
writeFileSync(path.join(dist, "docs", "index.html"), docsHtml);
for (const licence of ["LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"]) {
  writeFileSync(path.join(dist, "docs", licence), readFileSync(path.join(swaggerUi, licence)));
}
console.log(`web/dist: index.html ${html.length} B, app.js ${js.length} B, app.css ${css.length} B`);
console.log(`web/dist/docs: index.html ${docsHtml.length} B, ${Object.entries(docs).map(([n, b]) => `${n} ${b.length} B`).join(", ")}`);
