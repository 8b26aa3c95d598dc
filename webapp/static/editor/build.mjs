// Builds the committed front-end assets from node_modules (run through ./rebuild.sh).
//   ../dist/editor.min.js             CodeMirror 6 + src/editor.js, one minified IIFE
//   ../dist/editor.min.js.LICENSES.txt every bundled package with its version and licence
//   ../vendor/htmx-<version>.min.js    htmx, copied as published, with its LICENSE
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const vendor = join(here, "..", "vendor");
mkdirSync(dist, { recursive: true });
mkdirSync(vendor, { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "editor.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "none",
  metafile: true,
  outfile: join(dist, "editor.min.js"),
});

const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!match) continue;
  const meta = JSON.parse(readFileSync(join(here, "node_modules", match[1], "package.json"), "utf8"));
  packages.set(meta.name, `${meta.name}@${meta.version} (${meta.license})`);
}
writeFileSync(
  join(dist, "editor.min.js.LICENSES.txt"),
  "editor.min.js bundles these packages (from webapp/static/editor/package-lock.json):\n" +
    [...packages.values()].sort().join("\n") +
    "\n",
);

const htmx = JSON.parse(readFileSync(join(here, "node_modules", "htmx.org", "package.json"), "utf8"));
for (const old of readdirSync(vendor).filter((name) => name.startsWith("htmx-"))) {
  unlinkSync(join(vendor, old));
}
copyFileSync(
  join(here, "node_modules", "htmx.org", "dist", "htmx.min.js"),
  join(vendor, `htmx-${htmx.version}.min.js`),
);
copyFileSync(join(here, "node_modules", "htmx.org", "LICENSE"), join(vendor, "htmx.LICENSE"));
console.log(`built editor.min.js (${packages.size} packages) and htmx-${htmx.version}.min.js`);
