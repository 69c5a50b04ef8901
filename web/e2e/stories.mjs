// The console's user stories, driven in Debian's Chromium by playwright-core
// against a real stack. Run by internal/gateway's TestConsoleStories, which
// starts the stack, files the case and passes in (environment):
//   CONSOLE_URL, ARTIFACTS (screenshot folder), STORY (JSON: users, caseId,
//   caseLink, villages, townA: the township of the inspector's village, townB: another). Locators are roles and labels, as a user sees them.
import { chromium } from "playwright-core";

const url = process.env.CONSOLE_URL;
const artifacts = process.env.ARTIFACTS;
const story = JSON.parse(process.env.STORY);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const problems = [];
let shot = 0;
let lastPage = null; // the page a failing story is on, for its screenshot

function check(ok, what) {
  if (!ok) throw new Error(what);
}

async function screenshot(page, name) {
  const file = `${artifacts}/${String(++shot).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

async function signIn(who) {
  const ctx = await browser.newContext({ locale: "zh-CN", viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(60000); // the whole suite runs beside it
  page.on("console", (m) => {
    // A refused API call (a 404 for another township's case) is logged by
    // Chromium as a failed resource; it is the answer, not a fault.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`${who.username}: console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${who.username}: page error: ${e.message}`));
  // Tokens must never be in a URL.
  page.on("request", (r) => {
    if (/token|Bearer|eyJ/.test(r.url())) problems.push(`token in URL: ${r.url()}`);
  });
  lastPage = page;
  await page.goto(url);
  await page.getByLabel("用户名").fill(who.username);
  await page.getByLabel("密码").fill(who.password);
  await page.getByRole("button", { name: "登录" }).click();
  await page.getByRole("heading", { name: "案件看板" }).waitFor();
  return page;
}

async function step(page, name, fill) {
  const form = page.getByRole("form", { name });
  await form.waitFor();
  if (fill) await fill(form);
  await form.getByRole("button", { name }).click();
}

async function run(name, f) {
  const t0 = Date.now();
  try {
    await f();
    console.log(`story ok: ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    problems.push(`story failed: ${name}: ${e.stack ?? e}`);
    if (lastPage && !lastPage.isClosed()) {
      await screenshot(lastPage, "FAILED-" + name.replace(/\W+/g, "-")).catch(() => {});
      await lastPage.context().close().catch(() => {});
    }
  }
}

// A real 1×1 PNG: the server checks magic bytes and decodes the image.
const photo = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
const caseURL = `${url}#/cases/${encodeURIComponent(story.caseId)}`;

await run("a wrong password is refused with a message", async () => {
  const ctx = await browser.newContext({ locale: "zh-CN" });
  const page = await ctx.newPage();
  await page.goto(url);
  await page.getByLabel("用户名").fill(story.users.supervisor.username);
  await page.getByLabel("密码").fill("not-the-password-1");
  await page.getByRole("button", { name: "登录" }).click();
  await page.getByRole("alert").filter({ hasText: "用户名或密码错误" }).waitFor();
  await screenshot(page, "sign-in-refused");
  await ctx.close();
});

await run("supervisor sees the filed case on the board, accepts and dispatches it", async () => {
  const page = await signIn(story.users.supervisor);
  const reported = page.getByRole("region", { name: "待受理" });
  await reported.getByRole("link", { name: story.caseLink }).waitFor();
  await screenshot(page, "board-supervisor");
  await page.getByRole("button", { name: "超期" }).click();
  await page.getByText("暂无案件").waitFor();
  await page.getByRole("button", { name: "全部" }).click();
  await reported.getByRole("link", { name: story.caseLink }).click();
  await page.getByRole("heading", { name: /待受理/ }).waitFor();
  await page.getByRole("region", { name: "责任人" }).waitFor();
  await screenshot(page, "case-reported");
  await step(page, "受理");
  await page.getByRole("heading", { name: /已受理/ }).waitFor();
  await step(page, "派遣", async (form) => {
    await form.getByLabel("处理人").selectOption({ label: story.handlerLabel });
  });
  await page.getByRole("heading", { name: /已派遣/ }).waitFor();
  const steps = await page.getByRole("region", { name: "可执行操作" }).getByRole("button").allTextContents();
  check(!steps.includes("派遣") && !steps.includes("受理"), `steps after dispatch: ${steps}`);
  await screenshot(page, "case-dispatched");
  await page.getByRole("button", { name: "刷新" }).click();
  await page.getByRole("status").filter({ hasText: "会话已续期" }).waitFor();
  await page.context().close();
});

await run("the handler starts work and asks for more days", async () => {
  const page = await signIn(story.users.inspector);
  await page.goto(caseURL);
  await step(page, "开始整改");
  await page.getByRole("heading", { name: /整改中/ }).waitFor();
  await step(page, "申请延期", async (form) => {
    await form.getByLabel("天").fill("5");
    await form.getByLabel("备注").fill("需要调用吸油设备");
  });
  // The request is done when the timeline shows it (the state stays 整改中).
  await page.locator("li").filter({ hasText: "需要调用吸油设备" }).waitFor();
  // Deciding on one's own request is never offered.
  await page.getByRole("form", { name: "提交整改" }).waitFor();
  const own = await page.getByRole("region", { name: "可执行操作" }).getByRole("button").allTextContents();
  check(!own.includes("批准延期") && !own.includes("不予延期"), `the requester is offered: ${own}`);
  await page.context().close();
});

await run("supervisor approves the extension on the approvals page", async () => {
  const page = await signIn(story.users.supervisor);
  await page.getByRole("link", { name: "延期审批" }).click();
  const table = page.getByRole("table", { name: "延期审批" });
  await table.getByRole("link", { name: story.caseLink }).waitFor();
  await table.getByText("需要调用吸油设备").waitFor();
  await screenshot(page, "extensions");
  await step(page, "批准延期", async (form) => form.getByLabel("备注").fill("同意延期5天"));
  await page.getByText("暂无待审批的延期申请").waitFor();
  await page.context().close();
});

await run("the handler rectifies the case, another inspector of the cell verifies it", async () => {
  const page = await signIn(story.users.inspector);
  await page.goto(caseURL);
  await step(page, "提交整改", async (form) => {
    await form.getByLabel("照片").setInputFiles({ name: "after.png", mimeType: "image/png", buffer: photo });
    await form.getByLabel("备注").fill("已清理油污");
  });
  await page.getByRole("heading", { name: /已整改/ }).waitFor();
  // The handler is not offered the check of their own work (issue 20).
  await page.getByRole("region", { name: "可执行操作" }).waitFor();
  const offered = await page.getByRole("region", { name: "可执行操作" }).getByRole("button").allTextContents();
  check(!offered.includes("核查通过"), `the handler is offered: ${offered}`);
  await screenshot(page, "case-rectified");
  await page.context().close();
  // The handler may not check their own work; a second inspector does.
  const checker = await signIn(story.users.checker);
  await checker.goto(caseURL);
  await step(checker, "核查通过", async (form) => form.getByLabel("备注").fill("现场核查，已无油污"));
  await checker.getByRole("heading", { name: /已核查/ }).waitFor();
  await screenshot(checker, "case-verified");
  await checker.context().close();
});

await run("supervisor follows the case to closed", async () => {
  const page = await signIn(story.users.supervisor);
  // The handler's handover list holds the open case until it is closed.
  await page.goto(`${url}#/handover/${encodeURIComponent(story.users.inspector.id)}`);
  await page.getByRole("table", { name: "交接清单" }).getByRole("link", { name: story.caseLink }).waitFor();
  await screenshot(page, "handover");
  await page.goto(caseURL);
  await step(page, "结案");
  await page.getByRole("heading", { name: /已结案/ }).waitFor();
  await page.getByRole("region", { name: "处理记录" }).getByText("结案").first().waitFor();
  await screenshot(page, "case-closed");
  await page.getByRole("link", { name: "案件看板" }).click();
  await page.getByRole("region", { name: "已结案" }).getByRole("link", { name: story.caseLink }).waitFor();
  await page.getByRole("button", { name: "退出登录" }).click();
  await page.getByRole("button", { name: "登录" }).waitFor();
  await page.context().close();
});

await run("county office opens a person's page and the map of every village", async () => {
  const page = await signIn(story.users.officer);
  await page.getByRole("link", { name: "人员" }).click();
  await page.getByLabel("按姓名查找").fill(story.users.inspector.name);
  await page.getByRole("button", { name: "查找" }).click();
  await page.getByRole("list", { name: "人员" }).getByRole("link", { name: story.users.inspector.name }).click();
  await page.getByRole("heading", { name: `人员档案: ${story.users.inspector.name}` }).waitFor();
  await page.getByRole("region", { name: "任职记录" }).getByRole("listitem").first().waitFor();
  await page.getByRole("region", { name: "履职记录" }).getByRole("row").nth(1).waitFor();
  await page.getByRole("button", { name: "生成离任审计报告" }).click();
  const audit = page.getByRole("status", { name: "审计结果" });
  await audit.getByText("审计已记入台账").waitFor();
  await audit.getByRole("table", { name: "审计摘要" }).waitFor();
  await audit.getByRole("button", { name: "下载 PDF" }).waitFor();
  await screenshot(page, "person-audit");
  await page.getByRole("link", { name: "网格地图" }).click();
  const drawn = page.getByRole("status", { name: "已绘制村级网格" });
  await drawn.filter({ hasText: `已绘制村级网格: ${story.villages} ` }).waitFor({ timeout: 30000 });
  // The report filed for the case is drawn in the reports layer, which can be switched off.
  const layers = page.getByRole("group", { name: "图层" });
  const reportsLabel = (await layers.getByText(/近30天报告/).textContent()) ?? "";
  check(Number(/\((\d+)\)/.exec(reportsLabel)?.[1] ?? 0) >= 1, `reports layer: ${reportsLabel}`);
  // The reach and the zone the county office loaded, and the inspector's patrol of today.
  const count = async (re) => Number(/\((\d+)\)/.exec((await layers.getByText(re).textContent()) ?? "")?.[1] ?? -1);
  check((await count(/河段/)) === 1, `reaches layer: ${await count(/河段/)}`);
  check((await count(/保护区/)) === 1, `zones layer: ${await count(/保护区/)}`);
  check((await count(/巡查轨迹/)) === 1, `tracks layer: ${await count(/巡查轨迹/)}`);
  const mapRegion = page.getByRole("region", { name: "网格地图" });
  check((await mapRegion.getAttribute("data-tracks")) === "1", `tracks drawn: ${await mapRegion.getAttribute("data-tracks")}`);
  await screenshot(page, "map-tracks-reach-zone");
  // A date range longer than 31 days is refused by the server with its reason; one township's tracks are drawn.
  const trackForm = page.getByRole("form", { name: "巡查轨迹" });
  const day = (offset) => new Date(Date.now() + 8 * 3600e3 + offset * 864e5).toISOString().slice(0, 10);
  await trackForm.getByLabel("起始日期").fill(day(-40));
  await trackForm.getByRole("button", { name: "显示轨迹" }).click();
  await trackForm.getByRole("alert").filter({ hasText: "31" }).waitFor();
  await trackForm.getByLabel("起始日期").fill(day(-1));
  await trackForm.getByLabel("轨迹范围").selectOption(story.townB);
  await trackForm.getByRole("button", { name: "显示轨迹" }).click();
  await layers.getByText("巡查轨迹 (0)").waitFor();
  await trackForm.getByLabel("轨迹范围").selectOption(story.townA);
  await trackForm.getByRole("button", { name: "显示轨迹" }).click();
  await layers.getByText("巡查轨迹 (1)").waitFor();
  check((await mapRegion.getAttribute("data-tracks")) === "1", `township tracks drawn: ${await mapRegion.getAttribute("data-tracks")}`);
  // The map has zoomed to the track, which runs through the middle: its popup names the inspector.
  await mapRegion.click();
  await page.getByRole("tooltip").filter({ hasText: story.users.inspector.name }).filter({ hasText: "km" }).waitFor();
  await screenshot(page, "map-track-popup");
  await layers.getByLabel(/巡查轨迹/).uncheck();
  await layers.getByLabel(/近30天报告/).uncheck();
  // Who answers for the cell under the map's centre, now and on a chosen day.
  await page.getByRole("region", { name: "网格地图" }).click();
  const panel = page.getByRole("complementary", { name: "责任人" });
  await panel.getByRole("list", { name: "责任人" }).getByRole("link").first().waitFor();
  const today = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
  const onDay = panel.getByRole("form", { name: "查询某日责任人" });
  await onDay.getByLabel("查询某日责任人").fill(today);
  await onDay.getByRole("button", { name: "查找" }).click();
  await panel.getByText(`${today} 23:59`).waitFor();
  await panel.getByRole("list", { name: "责任人" }).getByRole("link").first().waitFor();
  await screenshot(page, "map-county");
  await page.getByRole("link", { name: "责任台账" }).click();
  await page.getByRole("button", { name: "校验台账" }).click();
  await page.getByRole("status").filter({ hasText: "校验通过" }).waitFor();
  const exported = page.waitForEvent("download");
  await page.getByRole("button", { name: "导出台账" }).click();
  const file = await exported;
  check(file.suggestedFilename().endsWith(".jsonl"), `ledger export named ${file.suggestedFilename()}`);
  await page.getByRole("status").filter({ hasText: "已导出" }).waitFor();
  await screenshot(page, "ledger");
  // A grid file with a broken village: the dry run lists it and marks it on the map, writing nothing.
  await page.getByRole("link", { name: "网格导入" }).click();
  const bad = {
    type: "FeatureCollection",
    features: [
      { type: "Feature", properties: { code: "12", name: "坏编码村", level: "village" }, geometry: { type: "Polygon", coordinates: [[[114.5, 38.0], [114.51, 38.01], [114.51, 38.0], [114.5, 38.01], [114.5, 38.0]]] } },
    ],
  };
  await page.getByLabel("GeoJSON 文件").setInputFiles({ name: "bad.geojson", mimeType: "application/geo+json", buffer: Buffer.from(JSON.stringify(bad)) });
  await page.getByRole("form", { name: "试运行" }).getByRole("button", { name: "试运行" }).click();
  await page.getByRole("list", { name: "问题" }).getByRole("listitem").first().waitFor();
  await page.locator('[aria-label="问题地图"][data-bad="1"]').waitFor();
  check(await page.getByRole("button", { name: "正式导入" }).isDisabled(), "a refused dry run lets the import go ahead");
  await screenshot(page, "grid-import-dry-run");
  await page.getByRole("button", { name: "English" }).click();
  await page.getByRole("heading", { name: /Grid import/ }).waitFor();
  await page.context().close();
});

await run("an inspector of another township sees none of it", async () => {
  const page = await signIn(story.users.outsider);
  await page.getByText("暂无案件").waitFor();
  const links = await page.locator("main").getByRole("link").count();
  check(links === 0, `the outsider's board shows ${links} cases`);
  await screenshot(page, "board-outsider");
  await page.goto(caseURL);
  await page.getByRole("alert").filter({ hasText: "未找到" }).waitFor();
  await screenshot(page, "case-outsider");
  await page.getByRole("link", { name: "网格地图" }).click();
  const status = page.getByRole("status", { name: "已绘制村级网格" });
  await status.filter({ hasText: "案件点位: 0" }).waitFor({ timeout: 30000 });
  const text = await status.textContent();
  const villages = Number(/已绘制村级网格: (\d+)/.exec(text ?? "")?.[1] ?? "-1");
  check(villages <= 1, `the outsider's map draws ${villages} villages: ${text}`);
  const outsiderTracks = await page.getByRole("region", { name: "网格地图" }).getAttribute("data-tracks");
  check(outsiderTracks === "0", `the outsider's map draws ${outsiderTracks} patrol tracks`);
  await screenshot(page, "map-outsider");
  await page.context().close();
});

await browser.close();
for (const p of problems) console.log(`PROBLEM ${p}`);
process.exit(problems.length ? 1 : 0);
