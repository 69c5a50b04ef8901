import { ApiError, upload, type Operations } from "../api/client";
import { clear, h } from "../dom";
import { t } from "../i18n";
import type { FileFeature } from "../mapview";
import { heading, showError } from "./common";

type ImportMsg = Operations["GridService_ImportGeoJSON"]["request"];

/** chunks is the import stream: the header, then the file in ≤ 1 MiB pieces. */
function chunks(header: NonNullable<ImportMsg["header"]>, bytes: Uint8Array): ImportMsg[] {
  const out: ImportMsg[] = [{ header }];
  const size = 768 * 1024;
  for (let off = 0; off < bytes.length; off += size) {
    let bin = "";
    for (const b of bytes.subarray(off, off + size)) bin += String.fromCharCode(b);
    out.push({ chunk: btoa(bin) });
  }
  return out;
}

/** fileFeatures reads the features of the file for the map, as far as it parses. */
function fileFeatures(text: string): FileFeature[] {
  try {
    const fc = JSON.parse(text) as { features?: Array<{ geometry?: unknown; properties?: Record<string, unknown> }> };
    return (fc.features ?? []).map((f, index) => ({
      index,
      label: `${String(f.properties?.code ?? "")} ${String(f.properties?.name ?? "")}`.trim() || `#${index}`,
      geometry: f.geometry,
      problems: [],
    }));
  } catch {
    return [];
  }
}

/**
 * renderImport is the county office's grid import: choose a GeoJSON file,
 * run it dry (the server checks everything and writes nothing), see every
 * problem in a list and on the map, then import it for real once the dry
 * run is clean. All-or-nothing: a refused import writes nothing.
 */
export async function renderImport(main: HTMLElement): Promise<void> {
  clear(main);
  const file = h("input", { id: "import-file", type: "file", accept: ".geojson,.json,application/geo+json,application/json", required: true });
  const level = h(
    "select",
    { id: "import-level" },
    h("option", { value: "GRID_LEVEL_UNSPECIFIED" }, t("levelFromFile")),
    h("option", { value: "GRID_LEVEL_TOWNSHIP" }, t("township")),
    h("option", { value: "GRID_LEVEL_VILLAGE" }, t("village")),
  );
  const crs = h("input", { id: "import-crs", placeholder: "EPSG:4547" });
  const result = h("div", { role: "status", "aria-label": t("importResult") });
  const problems = h("ul", { "aria-label": t("problems") });
  const mapEl = h("div", { class: "map", role: "region", "aria-label": t("problemsMap") });
  const info = h("p", {});
  const realButton = h("button", { type: "button", disabled: true }, t("importNow"));

  let text = "";
  let bytes = new Uint8Array();
  const run = async (dryRun: boolean) => {
    const f = file.files?.[0];
    if (!f) return;
    bytes = new Uint8Array(await f.arrayBuffer());
    text = new TextDecoder().decode(bytes);
    clear(problems);
    clear(mapEl);
    result.removeAttribute("role");
    result.setAttribute("role", "status");
    result.textContent = t("loading");
    realButton.disabled = true;
    const features = fileFeatures(text);
    const header = { dryRun, fileName: f.name, totalBytes: String(bytes.length), level: level.value as NonNullable<ImportMsg["header"]>["level"], sourceCrs: crs.value.trim() };
    try {
      const r = await upload("GridService_ImportGeoJSON", chunks(header, bytes));
      result.textContent = `${dryRun ? t("dryRunOk") : t("importDone")}: ${t("created")} ${r.created ?? 0} · ${t("updated")} ${r.updated ?? 0} · ${t("unchanged")} ${r.unchanged ?? 0} · ${t("retired")} ${r.retired ?? 0}`;
      for (const w of r.warnings ?? []) {
        problems.append(h("li", {}, `${t("warning")}: #${w.feature ?? -1} ${w.code ?? ""} ${w.message ?? ""}`));
        const ff = features.find((x) => x.index === w.feature);
        ff?.problems.push(w.message ?? "");
      }
      realButton.disabled = !dryRun;
    } catch (e) {
      // The problems go in their own list (and on the map), not twice.
      showError(result, e, false);
      if (e instanceof ApiError) {
        for (const v of e.violations) {
          problems.append(h("li", {}, `${v.field}: ${v.description}`));
          const m = /^features\[(\d+)\]/.exec(v.field);
          const ff = m ? features.find((x) => x.index === Number(m[1])) : undefined;
          ff?.problems.push(v.description);
        }
      }
    }
    const { fileMap } = await import("../mapview");
    const drawn = await fileMap(mapEl, features, (ff) => {
      info.textContent = `${ff.label}: ${ff.problems.length ? ff.problems.join("; ") : t("noProblems")}`;
    });
    mapEl.dataset.bad = String(features.filter((x) => x.problems.length > 0).length);
    info.textContent = `${t("featuresDrawn")}: ${drawn} · ${t("problems")}: ${features.filter((x) => x.problems.length > 0).length}`;
  };
  const form = h(
    "form",
    { "aria-label": t("dryRun") },
    h("label", { for: "import-file" }, t("importFile")),
    file,
    h("label", { for: "import-level" }, t("level")),
    level,
    h("label", { for: "import-crs" }, t("sourceCrs")),
    crs,
    h("button", { type: "submit" }, t("dryRun")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void run(true).catch((e) => showError(result, e));
  });
  realButton.addEventListener("click", () => void run(false).catch((e) => showError(result, e)));
  main.append(heading(t("gridImport")), form, realButton, result, problems, info, mapEl);
}
