import { call } from "../api/client";
import type { v1GridNode } from "../api/generated";
import { clear, h } from "../dom";
import { t } from "../i18n";
import { gridMap } from "../mapview";
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
 * is responsible for it now. "#/map/synthetic-N" adds N made-up points
 * inside the grid (the browser benchmark's 10,000-point map).
 */
export async function renderMap(main: HTMLElement): Promise<void> {
  const who = await call("AuthService_WhoAmI", {});
  const grant = (who.grants ?? []).find((g) => g.nodeId);
  clear(main);
  main.append(heading(t("map")));
  if (!grant?.nodeId) return;
  const [nodes, cases] = await Promise.all([subtree(grant.nodeId), listAllCases({}, 20000)]);
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
    async (code, name) => {
      clear(panel);
      panel.append(h("h2", {}, `${t("responsible")}: ${name} (${code})`));
      try {
        const r = await call("PeopleService_ListResponsible", { nodeCode: code });
        panel.append(h("ul", {}, ...(r.responsible ?? []).map((p) => h("li", {}, h("a", { href: `#/people/${encodeURIComponent(p.personId ?? "")}` }, p.name ?? ""), ` ${p.role ?? ""}`))));
      } catch (e) {
        const m = h("p", {});
        showError(m, e);
        panel.append(m);
      }
    },
  );
  stats.textContent = `${t("villagesDrawn")}: ${drawn.villages} · ${t("casePoints")}: ${drawn.points} · ${drawn.drawnMs.toFixed(0)} ms`;
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
