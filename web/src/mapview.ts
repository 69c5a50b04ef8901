// OpenLayers maps. The grid itself is the base map (no tiles needed); a
// tile layer is drawn under it only when the deployment configures one.
import "ol/ol.css";
import OlMap from "ol/Map";
import View from "ol/View";
import Feature from "ol/Feature";
import Point from "ol/geom/Point";
import Overlay from "ol/Overlay";
import GeoJSON from "ol/format/GeoJSON";
import VectorLayer from "ol/layer/Vector";
import VectorImageLayer from "ol/layer/VectorImage";
import TileLayer from "ol/layer/Tile";
import VectorSource from "ol/source/Vector";
import Cluster from "ol/source/Cluster";
import XYZ from "ol/source/XYZ";
import { Circle, Fill, Stroke, Style, Text } from "ol/style";
import { fromLonLat } from "ol/proj";
import type { FeatureLike } from "ol/Feature";

/** GridCell is what the map draws of a grid node. */
export interface GridCell {
  code: string;
  name: string;
  level: string;
  geojson: string;
}

let tileURL: string | undefined;
async function baseLayers(): Promise<TileLayer<XYZ>[]> {
  if (tileURL === undefined) {
    try {
      const cfg = (await (await fetch("/config.json")).json()) as { tileUrl?: string };
      tileURL = cfg.tileUrl ?? "";
    } catch {
      tileURL = "";
    }
  }
  return tileURL ? [new TileLayer({ source: new XYZ({ url: tileURL }) })] : [];
}

const levelStyle: Record<string, Style> = {
  GRID_LEVEL_COUNTY: new Style({ stroke: new Stroke({ color: "#1b5e20", width: 3 }) }),
  GRID_LEVEL_TOWNSHIP: new Style({ stroke: new Stroke({ color: "#2e7d32", width: 2 }) }),
  GRID_LEVEL_VILLAGE: new Style({ stroke: new Stroke({ color: "#66bb6a", width: 1 }), fill: new Fill({ color: "rgba(200,230,201,0.35)" }) }),
};

const clusterStyles = new Map<number, Style>();
function clusterStyle(f: FeatureLike): Style {
  const n = (f.get("features") as unknown[] | undefined)?.length ?? 1;
  let s = clusterStyles.get(n);
  if (!s) {
    s = new Style({
      image: new Circle({ radius: n > 1 ? Math.min(8 + Math.log2(n) * 3, 24) : 5, fill: new Fill({ color: "rgba(211,47,47,0.8)" }), stroke: new Stroke({ color: "#fff", width: 1 }) }),
      text: n > 1 ? new Text({ text: String(n), fill: new Fill({ color: "#fff" }) }) : undefined,
    });
    clusterStyles.set(n, s);
  }
  return s;
}

/** MapStats is what a drawn map reports (the tests and the benchmark read it). */
export interface MapStats {
  villages: number;
  points: number;
  drawnMs: number;
  reaches: number;
  zones: number;
  reports: number;
  tracks: number;
  /** show turns an overlay on or off. */
  show: (layer: OverlayName, on: boolean) => void;
  /**
   * setTracks replaces the patrol tracks drawn, fitting the view to them
   * when fit is set; resolves with their number once drawn.
   */
  setTracks: (tracks: Track[], fit?: boolean) => Promise<number>;
}

/** OverlayName names the layers the layer switcher toggles. */
export type OverlayName = "reaches" | "zones" | "reports" | "tracks";

/** Track is a patrol's simplified line with what its popup says. */
export interface Track {
  id: string;
  personId: string;
  /** The popup's text: person, time, length. */
  label: string;
  /** A GeoJSON LineString (WGS-84). */
  geojson: string;
}

/** Overlays are the layers drawn over the grid when the county has them. */
export interface Overlays {
  /** River and reservoir reaches, a GeoJSON FeatureCollection. */
  reaches?: string;
  /** Protected zones, a GeoJSON FeatureCollection. */
  zones?: string;
  /** Report positions (longitude, latitude). */
  reports?: Array<[number, number]>;
  /** Patrol tracks. */
  tracks?: Track[];
}

const reachStyle = new Style({ stroke: new Stroke({ color: "#0277bd", width: 3 }), fill: new Fill({ color: "rgba(79,195,247,0.35)" }) });
const zoneStyle = new Style({ stroke: new Stroke({ color: "#e65100", width: 2, lineDash: [6, 4] }), fill: new Fill({ color: "rgba(255,183,77,0.18)" }) });
const reportStyle = new Style({ image: new Circle({ radius: 4, fill: new Fill({ color: "rgba(25,118,210,0.85)" }), stroke: new Stroke({ color: "#fff", width: 1 }) }) });

// One colour per person: a hue from the person's id, so a person keeps
// their colour across reloads and date ranges.
const trackStyles = new Map<string, Style>();
function trackStyle(f: FeatureLike): Style {
  const person = String(f.get("personId") ?? "");
  let s = trackStyles.get(person);
  if (!s) {
    let hash = 0;
    for (let i = 0; i < person.length; i++) hash = (hash * 31 + person.charCodeAt(i)) >>> 0;
    s = new Style({ stroke: new Stroke({ color: `hsl(${hash % 360}, 80%, 38%)`, width: 3 }) });
    trackStyles.set(person, s);
  }
  return s;
}

function trackFeatures(format: GeoJSON, tracks: Track[]): Feature[] {
  const out: Feature[] = [];
  for (const tr of tracks) {
    if (!tr.geojson) continue;
    try {
      const geom = format.readGeometry(tr.geojson);
      if (!geom) continue;
      const f = new Feature(geom);
      f.setProperties({ trackId: tr.id, personId: tr.personId, label: tr.label });
      out.push(f);
    } catch {
      // A track the browser cannot read is left out.
    }
  }
  return out;
}

function collection(format: GeoJSON, text?: string): Feature[] {
  if (!text) return [];
  try {
    return format.readFeatures(text) as Feature[];
  } catch {
    return [];
  }
}

/**
 * gridMap draws the grid cells by level and the points as clusters, and
 * resolves once the first full render is done.
 */
export async function gridMap(el: HTMLElement, cells: GridCell[], points: Array<[number, number]>, onSelect?: (code: string, name: string) => void, overlays: Overlays = {}): Promise<MapStats> {
  const start = performance.now();
  const format = new GeoJSON({ featureProjection: "EPSG:3857", dataProjection: "EPSG:4326" });
  const gridSource = new VectorSource();
  let villages = 0;
  for (const c of cells) {
    if (!c.geojson) continue;
    const geom = format.readGeometry(c.geojson);
    if (!geom) continue;
    const f = new Feature(geom);
    f.setProperties({ code: c.code, name: c.name, level: c.level });
    gridSource.addFeature(f);
    if (c.level === "GRID_LEVEL_VILLAGE") villages++;
  }
  const pointSource = new VectorSource({ features: points.map(([lon, lat]) => new Feature(new Point(fromLonLat([lon, lat])))) });
  const reachFeatures = collection(format, overlays.reaches);
  const zoneFeatures = collection(format, overlays.zones);
  const reachLayer = new VectorLayer({ source: new VectorSource({ features: reachFeatures }), style: reachStyle });
  const zoneLayer = new VectorLayer({ source: new VectorSource({ features: zoneFeatures }), style: zoneStyle });
  const trackSource = new VectorSource({ features: trackFeatures(format, overlays.tracks ?? []) });
  // An image layer, like the case points: 500 tracks of a week redrawn on
  // every frame of a pan cost four times the grid's frame (BENCHMARKS.md 6).
  const trackLayer = new VectorImageLayer({ source: trackSource, style: trackStyle });
  const reportLayer = new VectorImageLayer({
    source: new VectorSource({ features: (overlays.reports ?? []).map(([lon, lat]) => new Feature(new Point(fromLonLat([lon, lat])))) }),
    style: reportStyle,
  });
  const map = new OlMap({
    target: el,
    layers: [
      ...(await baseLayers()),
      new VectorLayer({ source: gridSource, style: (f) => levelStyle[f.get("level") as string] ?? levelStyle.GRID_LEVEL_VILLAGE }),
      zoneLayer,
      reachLayer,
      trackLayer,
      reportLayer,
      // An image layer: drawn once per view and moved as a picture while
      // the user pans, so 10,000 points cost nothing per frame.
      new VectorImageLayer({ source: new Cluster({ source: pointSource, distance: 40 }), style: clusterStyle }),
    ],
    view: new View({ center: fromLonLat([114.5, 38.0]), zoom: 9 }),
  });
  // A track's popup: who walked it, when, how far.
  const popup = document.createElement("div");
  popup.setAttribute("role", "tooltip");
  popup.className = "track-popup";
  Object.assign(popup.style, { background: "#fff", border: "1px solid #555", padding: "2px 6px", font: "12px sans-serif", whiteSpace: "nowrap" });
  const popupOverlay = new Overlay({ element: popup, offset: [8, -8], positioning: "bottom-left" });
  map.addOverlay(popupOverlay);
  map.on("singleclick", (ev) => {
    const hit = trackLayer.getVisible()
      ? (map.forEachFeatureAtPixel(ev.pixel, (f) => f as Feature, { layerFilter: (l) => l === trackLayer, hitTolerance: 4 }) ?? undefined)
      : undefined;
    popup.textContent = hit ? String(hit.get("label") ?? "") : "";
    popupOverlay.setPosition(hit ? ev.coordinate : undefined);
  });
  if (onSelect) {
    map.on("singleclick", (ev) => {
      // The smallest cell under the click (villages are drawn last-level).
      const hit = gridSource.getFeaturesAtCoordinate(ev.coordinate).sort((a, b) => String(b.get("level")).localeCompare(String(a.get("level"))))[0];
      if (hit) onSelect(hit.get("code") as string, hit.get("name") as string);
    });
  }
  const extent = gridSource.getExtent();
  if (extent && gridSource.getFeatures().length > 0) map.getView().fit(extent, { padding: [20, 20, 20, 20] });
  await new Promise<void>((resolve) => map.once("rendercomplete", () => resolve()));
  const layers = { reaches: reachLayer, zones: zoneLayer, reports: reportLayer, tracks: trackLayer };
  const stats: MapStats = {
    villages,
    points: points.length,
    drawnMs: performance.now() - start,
    reaches: reachFeatures.length,
    zones: zoneFeatures.length,
    reports: overlays.reports?.length ?? 0,
    tracks: trackSource.getFeatures().length,
    show: (layer, on) => layers[layer].setVisible(on),
    setTracks: async (tracks, fit = false) => {
      popupOverlay.setPosition(undefined);
      trackSource.clear(true);
      trackSource.addFeatures(trackFeatures(format, tracks));
      const n = trackSource.getFeatures().length;
      stats.tracks = n;
      el.dataset.tracks = String(n);
      // Show what was asked for: the tracks found, close enough to tell the walks apart.
      const extent = trackSource.getExtent();
      if (fit && n > 0 && extent) map.getView().fit(extent, { padding: [40, 40, 40, 40], maxZoom: 16 });
      const drawn = new Promise<void>((resolve) => map.once("rendercomplete", () => resolve()));
      map.render();
      await drawn;
      return n;
    },
  };
  el.dataset.villages = String(villages);
  el.dataset.points = String(points.length);
  el.dataset.tracks = String(stats.tracks);
  el.dataset.drawnMs = stats.drawnMs.toFixed(0);
  return stats;
}

/** pointMap shows one position (a case's) on a small map. */
export async function pointMap(el: HTMLElement, lon: number, lat: number): Promise<void> {
  const source = new VectorSource({ features: [new Feature(new Point(fromLonLat([lon, lat])))] });
  new OlMap({
    target: el,
    layers: [...(await baseLayers()), new VectorLayer({ source, style: clusterStyle })],
    view: new View({ center: fromLonLat([lon, lat]), zoom: 14 }),
  });
}

const fileStyle = new Style({ stroke: new Stroke({ color: "#1565c0", width: 1 }), fill: new Fill({ color: "rgba(144,202,249,0.25)" }) });
const problemStyle = new Style({ stroke: new Stroke({ color: "#c62828", width: 3 }), fill: new Fill({ color: "rgba(239,154,154,0.55)" }) });

/** FileFeature is a feature of a file being imported, with its problems. */
export interface FileFeature {
  index: number;
  label: string;
  geometry: unknown;
  problems: string[];
}

/**
 * fileMap draws the features of an import file, those with problems in
 * red; clicking one names it and its problems. Geometries not in WGS-84
 * longitude/latitude are skipped (the server transforms them; the browser
 * does not). Resolves with the number drawn once the first render is done.
 */
export async function fileMap(el: HTMLElement, features: FileFeature[], onSelect?: (f: FileFeature) => void): Promise<number> {
  const format = new GeoJSON({ featureProjection: "EPSG:3857", dataProjection: "EPSG:4326" });
  const source = new VectorSource();
  for (const ff of features) {
    if (!ff.geometry) continue;
    try {
      const geom = format.readGeometry(ff.geometry, { featureProjection: "EPSG:4326" });
      if (!geom) continue;
      const [minX = 0, minY = 0, maxX = 0, maxY = 0] = geom.getExtent();
      if (minX < -180 || maxX > 180 || minY < -90 || maxY > 90) continue;
      const f = new Feature(geom.transform("EPSG:4326", "EPSG:3857"));
      f.set("index", ff.index);
      f.setStyle(ff.problems.length > 0 ? problemStyle : fileStyle);
      source.addFeature(f);
    } catch {
      // A geometry the browser cannot read is listed as a problem by the server.
    }
  }
  const map = new OlMap({
    target: el,
    layers: [...(await baseLayers()), new VectorLayer({ source })],
    view: new View({ center: fromLonLat([114.5, 38.0]), zoom: 9 }),
  });
  if (onSelect) {
    map.on("singleclick", (ev) => {
      const hit = source.getFeaturesAtCoordinate(ev.coordinate)[0];
      const ff = hit ? features.find((x) => x.index === hit.get("index")) : undefined;
      if (ff) onSelect(ff);
    });
  }
  const extent = source.getExtent();
  if (extent && source.getFeatures().length > 0) map.getView().fit(extent, { padding: [20, 20, 20, 20] });
  await new Promise<void>((resolve) => map.once("rendercomplete", () => resolve()));
  el.dataset.features = String(source.getFeatures().length);
  return source.getFeatures().length;
}
