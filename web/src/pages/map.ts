import { base64Bytes, call, download } from "../api/client";
import type { v1GridNode } from "../api/generated";
import { clear, fmtTime, h } from "../dom";
import { t } from "../i18n";
import { gridMap, type Overlays, type Track } from "../mapview";
import { listAllCases } from "./board";
import { heading, showError } from "./common";

/** subtree lists every node under the user's own grant node, with shapes. */
async function subtree(nodeId: string): Promise<v1GridNode[]> {
  const out: v1GridNode[] = [];
  let pageToken = "";
  do {
    const r = await call("GridService_ListSubtree", { nodeId, includeGeometry: true, page: { pageSize: 500, pageToken } });
    out.push(...(r.nodes ?? []));
    pageToken = r.nextPageToken ?? "";
  } while (pageToken);
  return out;
}

/**
 * renderMap is the county office's grid map: every cell the user may see,
 * by level, with the cases as clustered points; clicking a cell shows who
 * is responsible for it now; the patrol tracks of the last 7 days, with a
 * form choosing the area and days. "#/map/synthetic-N" adds N made-up
 * points inside the grid (the browser benchmark's 10,000-point map).
 */
export async function renderMap(main: HTMLElement): Promise<void> {
  const who = await call("AuthService_WhoAmI", {});
  const grant = (who.grants ?? []).find((g) => g.nodeId);
  clear(main);
  main.append(heading(t("map")));
  if (!grant?.nodeId) return;
  const countyCode = who.person?.countyCode ?? "";
  const trackNode = grant.nodeCode ?? countyCode;
  const [fromDay, toDay] = [chinaDay(-6), chinaDay(0)];
  const [nodes, cases, overlays, tracks] = await Promise.all([
    subtree(grant.nodeId),
    listAllCases({}, 20000),
    loadOverlays(countyCode),
    loadTracks(trackNode, fromDay, toDay).catch(() => ({ tracks: [] as Track[], ms: 0 })),
  ]);

  const points: Array<[number, number]> = [];
  for (const c of cases) if (c.position?.longitude !== undefined && c.position.latitude !== undefined) points.push([c.position.longitude, c.position.latitude]);
  const synthetic = /synthetic-(\d+)/.exec(location.hash);
  if (synthetic) points.push(...syntheticPoints(nodes, Number(synthetic[1])));

  const stats = h("p", { role: "status", "aria-label": t("villagesDrawn") });
  const panel = h("aside", { "aria-label": t("responsible") }, h("h2", {}, t("responsible")));
  const el = h("div", { class: "map", role: "region", "aria-label": t("map") });
  main.append(stats, h("div", { class: "mapwrap" }, el, panel));
  const drawn = await gridMap(
    el,
    nodes.map((n) => ({ code: n.code ?? "", name: n.name ?? "", level: n.level ?? "", geojson: n.geometryGeojson ?? "" })),
    points,
    (code, name) => void showResponsible(panel, code, name),
    overlays,
  );
  stats.textContent = `${t("villagesDrawn")}: ${drawn.villages} · ${t("casePoints")}: ${drawn.points} · ${drawn.drawnMs.toFixed(0)} ms`;
  // The tracks are drawn after the first render: the map shows at once,
  // the week's tracks (500 of them in the benchmark) follow.
  el.dataset.tracksMs = tracks.ms.toFixed(0);
  const tracksStart = performance.now();
  drawn.tracks = await drawn.setTracks(tracks.tracks);
  el.dataset.tracksDrawnMs = (performance.now() - tracksStart).toFixed(0);
  const toggles = h("fieldset", { "aria-label": t("layers") }, h("legend", {}, t("layers")));
  const labels: Partial<Record<string, HTMLLabelElement>> = {};
  for (const [layer, label, n] of [
    ["reaches", t("reaches"), drawn.reaches],
    ["zones", t("zones"), drawn.zones],
    ["reports", t("reportPoints"), drawn.reports],
    ["tracks", t("tracks"), drawn.tracks],
  ] as const) {
    const id = `layer-${layer}`;
    const box = h("input", { id, type: "checkbox", checked: true });
    box.addEventListener("change", () => drawn.show(layer, box.checked));
    labels[layer] = h("label", { for: id }, `${label} (${n})`);
    toggles.append(box, labels[layer], " ");
  }
  main.insertBefore(toggles, stats.nextSibling);
  main.insertBefore(
    trackForm(nodes, trackNode, fromDay, toDay, async (node, from, to) => {
      const r = await loadTracks(node, from, to);
      el.dataset.tracksMs = r.ms.toFixed(0);
      const n = await drawn.setTracks(r.tracks, true);
      if (labels.tracks) labels.tracks.textContent = `${t("tracks")} (${n})`;
    }),
    toggles.nextSibling,
  );
}

/** chinaDay is the date (YYYY-MM-DD, China Standard Time) offset days from today. */
function chinaDay(offset: number): string {
  return new Date(Date.now() + 8 * 3600e3 + offset * 864e5).toISOString().slice(0, 10);
}

/**
 * trackForm chooses the patrol tracks drawn: an area (the user's whole
 * scope or one township of it) and a date range (China Standard Time
 * days, at most 31 — the server says so when it is longer).
 */
function trackForm(nodes: v1GridNode[], scopeNode: string, fromDay: string, toDay: string, load: (node: string, from: string, to: string) => Promise<void>): HTMLFormElement {
  const area = h("select", { id: "tracks-area" }, h("option", { value: scopeNode }, t("wholeArea")));
  for (const n of nodes) {
    if (n.level === "GRID_LEVEL_TOWNSHIP" && n.code && n.code !== scopeNode) area.append(h("option", { value: n.code }, `${n.name ?? ""} (${n.code})`));
  }
  const from = h("input", { id: "tracks-from", type: "date", value: fromDay });
  const to = h("input", { id: "tracks-to", type: "date", value: toDay });
  const message = h("p", {});
  const form = h(
    "form",
    { "aria-label": t("tracks") },
    h("label", { for: "tracks-area" }, t("trackArea")),
    area,
    " ",
    h("label", { for: "tracks-from" }, t("trackFrom")),
    from,
    " ",
    h("label", { for: "tracks-to" }, t("trackTo")),
    to,
    " ",
    h("button", { type: "submit" }, t("showTracks")),
    message,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    message.removeAttribute("role");
    message.textContent = "";
    load(area.value, from.value, to.value).catch((e: unknown) => showError(message, e));
  });
  return form;
}

/**
 * loadTracks reads the patrol tracks of a node started between two China
 * Standard Time days (both included), newest first, at most 2,000.
 */
async function loadTracks(nodeCode: string, fromDay: string, toDay: string, max = 2000): Promise<{ tracks: Track[]; ms: number }> {
  const start = performance.now();
  const from = new Date(fromDay + "T00:00:00+08:00").toISOString();
  const to = new Date(new Date(toDay + "T00:00:00+08:00").getTime() + 864e5).toISOString();
  const out: Track[] = [];
  let pageToken = "";
  do {
    const r = await call("FieldService_ListPatrolTracks", { nodeCode, from, to, page: { pageSize: 500, pageToken } });
    for (const tr of r.tracks ?? []) {
      const km = ((tr.distanceM ?? 0) / 1000).toFixed(2);
      const when = `${fmtTime(tr.startedAt)} – ${tr.endedAt ? fmtTime(tr.endedAt) : t("underWay")}`;
      out.push({ id: tr.patrolId ?? "", personId: tr.personId ?? "", label: `${tr.personName || tr.personId || ""} · ${when} · ${km} km`, geojson: tr.geometryGeojson ?? "" });
    }
    pageToken = r.nextPageToken ?? "";
  } while (pageToken && out.length < max);
  return { tracks: out, ms: performance.now() - start };
}

function syntheticPoints(nodes: v1GridNode[], n: number): Array<[number, number]> {
  let minX = 180,
    minY = 90,
    maxX = -180,
    maxY = -90;
  for (const node of nodes) {
    const m = node.geometryGeojson?.match(/-?\d+\.\d+/g) ?? [];
    for (let i = 0; i + 1 < m.length; i += 2) {
      const x = Number(m[i]),
        y = Number(m[i + 1]);
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
  }
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => [minX + rnd() * (maxX - minX), minY + rnd() * (maxY - minY)] as [number, number]);
}

/**
 * loadOverlays reads the county's reaches, protected zones and the last
 * 30 days of reports. A layer the user may not read, or that the county
 * has not loaded, is simply absent.
 */
async function loadOverlays(countyCode: string): Promise<Overlays> {
  const since = new Date(Date.now() - 30 * 864e5).toISOString();
  const [reaches, zones, reports] = await Promise.all([
    call("WatersService_ExportReaches", { countyCode })
      .then((r) => (r.geojson ? new TextDecoder().decode(base64Bytes(r.geojson)) : undefined))
      .catch(() => undefined),
    download("ZoneService_ExportZones", { countyCode })
      .then((ms) => ms.map((m) => new TextDecoder().decode(base64Bytes(m.result?.chunk ?? ""))).join(""))
      .catch(() => undefined),
    listReports(since).catch(() => [] as Array<[number, number]>),
  ]);
  return { reaches, zones, reports };
}

async function listReports(since: string, max = 5000): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  let pageToken = "";
  do {
    const r = await call("FieldService_ListReports", { filter: { observedFrom: since }, page: { pageSize: 500, pageToken } });
    for (const rep of r.reports ?? []) {
      if (rep.longitude !== undefined && rep.latitude !== undefined) out.push([rep.longitude, rep.latitude]);
    }
    pageToken = r.nextPageToken ?? "";
  } while (pageToken && out.length < max);
  return out;
}

/** showResponsible lists who is responsible for a cell now, or on a chosen day. */
async function showResponsible(panel: HTMLElement, code: string, name: string, day = ""): Promise<void> {
  clear(panel);
  const date = h("input", { id: "responsible-on", type: "date", value: day });
  const form = h("form", { "aria-label": t("responsibleOn") }, h("label", { for: "responsible-on" }, t("responsibleOn")), date, h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void showResponsible(panel, code, name, date.value);
  });
  const list = h("ul", { "aria-label": t("responsible") });
  panel.append(h("h2", {}, `${t("responsible")}: ${name} (${code})`), form, h("p", {}, day ? `${day} 23:59` : t("current")), list);
  try {
    const at = day ? new Date(day + "T23:59:59+08:00").toISOString() : undefined;
    const r = await call("PeopleService_ListResponsible", { nodeCode: code, at });
    for (const p of r.responsible ?? []) list.append(h("li", {}, h("a", { href: `#/people/${encodeURIComponent(p.personId ?? "")}` }, p.name ?? ""), ` ${p.role ?? ""} ${p.nodeCode ?? ""}`));
    if ((r.responsible ?? []).length === 0) list.append(h("li", {}, t("nobody")));
  } catch (e) {
    const m = h("p", {});
    showError(m, e);
    panel.append(m);
  }
}
