// The console's browser benchmark (BENCHMARKS.md): first board render and
// the map of 10,000 case points, in Debian's headless Chromium against a
// real stack. Run by internal/gateway's TestConsoleBenchmark; prints
// figures, asserts no timing.
import { chromium } from "playwright-core";

const url = process.env.CONSOLE_URL;
const story = JSON.parse(process.env.STORY);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function signIn(who) {
  const ctx = await browser.newContext({ locale: "zh-CN", viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(60000);
  await page.goto(url);
  await page.getByLabel("用户名").fill(who.username);
  await page.getByLabel("密码").fill(who.password);
  await page.getByRole("button", { name: "登录" }).click();
  await page.getByRole("heading", { name: "案件看板" }).waitFor();
  return page;
}

// First board render: a fresh load of the board (signed in), from the
// start of navigation to the board's columns in the page.
const sup = await signIn(story.users.supervisor);
const board = [];
for (let i = 0; i < 7; i++) {
  await sup.reload();
  await sup.locator("main[data-rendered]").waitFor();
  board.push(Number(await sup.locator("main").getAttribute("data-rendered")));
}
const cases = await sup.locator("main .board li").count();
console.log(`BENCH board_first_render_ms median=${median(board).toFixed(0)} max=${Math.max(...board).toFixed(0)} runs=${board.length} cases=${cases}`);
await sup.context().close();

// The county map with 10,000 case points (synthetic, inside the county)
// over every village: from the data in hand to OpenLayers' first full
// render, then panning.
const off = await signIn(story.users.officer);
const draws = [];
const fetches = [];
const trackDraws = [];
for (let i = 0; i < 3; i++) {
  await off.goto(`${url}#/board`);
  await off.goto(`${url}#/map/synthetic-${story.points}`);
  const status = off.getByRole("status", { name: "已绘制村级网格" });
  await status.filter({ hasText: "ms" }).waitFor();
  await off.getByRole("group", { name: "图层" }).waitFor(); // built once the tracks are drawn
  draws.push(Number(await off.locator(".map").getAttribute("data-drawn-ms")));
  const fetched = await off.locator(".map").getAttribute("data-tracks-ms");
  if (fetched !== null) fetches.push(Number(fetched));
  const tracksDrawn = await off.locator(".map").getAttribute("data-tracks-drawn-ms");
  if (tracksDrawn !== null) trackDraws.push(Number(tracksDrawn));
}
const villages = await off.locator(".map").getAttribute("data-villages");
const points = await off.locator(".map").getAttribute("data-points");
const tracks = (await off.locator(".map").getAttribute("data-tracks")) ?? "none";
console.log(`BENCH map_draw_ms median=${median(draws).toFixed(0)} max=${Math.max(...draws).toFixed(0)} villages=${villages} points=${points} tracks=${tracks}`);
if (trackDraws.length) console.log(`BENCH tracks_draw_ms median=${median(trackDraws).toFixed(0)} max=${Math.max(...trackDraws).toFixed(0)} tracks=${tracks} (after the first render)`);
if (fetches.length) console.log(`BENCH tracks_fetch_ms median=${median(fetches).toFixed(0)} max=${Math.max(...fetches).toFixed(0)} tracks=${tracks} (ListPatrolTracks over the JSON API, pages of 500)`);
// The tracks layer off and on again, if this build has one.
const trackBox = off.getByRole("group", { name: "图层" }).getByLabel(/巡查轨迹/);
const hasTracks = (await trackBox.count()) > 0;

// Panning: drag the map and time each drag's frame until the next paint,
// with the 10,000 points and, for comparison, with the grid alone.
async function pan(label) {
const box = await off.locator(".map").boundingBox();
const pans = [];
for (let i = 0; i < 10; i++) {
  const x = box.x + box.width / 2, y = box.y + box.height / 2, dx = i % 2 ? -150 : 150;
  const t0 = Date.now();
  await off.mouse.move(x, y);
  await off.mouse.down();
  await off.mouse.move(x + dx, y + dx / 2, { steps: 5 });
  await off.mouse.up();
  await off.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  pans.push((Date.now() - t0) / 6); // per mouse event (5 moves + up)
}
console.log(`BENCH map_pan_ms_per_event_${label} median=${median(pans).toFixed(1)} max=${Math.max(...pans).toFixed(1)} drags=${pans.length}`);
}
if (hasTracks) {
  await pan(`10000_points_${tracks}_tracks`);
  await trackBox.uncheck();
}
await pan("10000_points");
await off.goto(`${url}#/board`);
await off.goto(`${url}#/map`);
await off.getByRole("status", { name: "已绘制村级网格" }).filter({ hasText: "ms" }).waitFor();
if (hasTracks) await trackBox.uncheck();
await pan("grid_only");
await browser.close();
