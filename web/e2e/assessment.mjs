// The assessment (考核) story, driven in Debian's Chromium by playwright-core
// against a real stack. Run by internal/gateway's TestConsoleAssessment,
// which starts the stack, seeds an external indicator, its weight and a
// value, files and accepts a case, and passes in (environment):
//   CONSOLE_URL, ARTIFACTS (screenshot folder), STORY (JSON: users, county,
//   township, caseId, villageA/village2/village3 {code, name}, villages (of
//   the township), month and prev (period labels)).
import { readFile } from "node:fs/promises";
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
let lastPage = null;

function check(ok, what) {
  if (!ok) throw new Error(what);
}

async function screenshot(page, name) {
  const file = `${artifacts}/${String(++shot).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

async function signIn(who) {
  const ctx = await browser.newContext({ locale: "zh-CN", viewport: { width: 1400, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(60000);
  page.on("console", (m) => {
    // A refused call is logged by Chromium as a failed resource: it is the answer.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`${who.username}: console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${who.username}: page error: ${e.message}`));
  page.on("request", (r) => {
    if (/token|Bearer|eyJ/.test(r.url())) problems.push(`token in URL: ${r.url()}`);
  });
  lastPage = page;
  await page.goto(url);
  await page.getByLabel("用户名").fill(who.username);
  await page.getByLabel("密码").fill(who.password);
  await page.getByRole("button", { name: "登录" }).click();
  await page.getByRole("heading", { name: "案件看板" }).waitFor();
  // The header is complete once it names the user (WhoAmI and the entries it offers).
  await page.locator("header .me").filter({ hasText: who.name }).waitFor();
  return page;
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

/** canvasSize is the drawn size of the chart's canvas. */
async function canvasSize(page, name) {
  const canvas = page.getByRole("img", { name }).locator("canvas").first();
  await canvas.waitFor();
  const box = await canvas.boundingBox();
  return box ? box.width * box.height : 0;
}

/** choose fills the query form with a month and asks for the township's villages. */
async function showMonth(page, label) {
  const [y, m] = label.split("-");
  const form = page.getByRole("form", { name: "考核条件" });
  await form.getByLabel("层级").selectOption("SCORECARD_LEVEL_VILLAGE");
  await form.getByLabel("考核期类型").selectOption("month");
  await form.getByLabel("年份").fill(y);
  await form.getByLabel("月份/季度").selectOption(String(Number(m)));
  await form.getByLabel("所属乡镇").selectOption(story.township);
  await form.getByRole("button", { name: "查询" }).click();
  await page.getByRole("status", { name: "考核期" }).filter({ hasText: `考核期 ${label}:` }).waitFor();
  // The page's first render (every township, this month) has the same
  // status: wait for the township's own rows.
  await page.waitForFunction(
    (town) => {
      const rows = [...document.querySelectorAll("table tbody tr[data-code]")];
      return rows.length > 0 && rows.every((r) => (r.getAttribute("data-code") ?? "").startsWith(town));
    },
    story.township,
  );
}

const row = (page, code) => page.getByRole("table", { name: "考核排名" }).locator(`tr[data-code="${code}"]`);

await run("the county office ranks a township's villages, drills down, exports, enters values and closes a month", async () => {
  const page = await signIn(story.users.officer);
  await page.getByRole("navigation", { name: "main" }).getByRole("link", { name: "考核评分" }).click();
  await page.getByRole("heading", { name: `考核评分 · 县 ${story.county}` }).waitFor();
  await showMonth(page, story.month);
  await page.getByRole("status", { name: "考核期" }).filter({ hasText: "未关闭" }).waitFor();

  // Ranked: ranks 1..n in order, totals never rising.
  const table = page.getByRole("table", { name: "考核排名" });
  await table.locator("tbody tr").nth(story.villages - 1).waitFor();
  const n = await table.locator("tbody tr").count();
  check(n === story.villages, `${n} rows for the township's ${story.villages} villages`);
  const ranks = await table.locator("tbody tr td:first-child").allTextContents();
  const totals = (await table.locator("tbody tr td.total").allTextContents()).map(Number);
  ranks.forEach((r, i) => check(r === `${i + 1}/${n}`, `row ${i} ranked ${r}`));
  totals.forEach((v, i) => check(i === 0 || v <= totals[i - 1], `totals not ranked: ${totals}`));
  // The seeded value is on its village's row.
  const water = row(page, story.villageA.code).getByRole("button", { name: /水质达标率/ });
  check((await water.textContent()).startsWith("98 / 95"), `water quality of village A: ${await water.textContent()}`);

  // Both charts are drawn.
  check((await canvasSize(page, "总分对比")) > 0, "the totals chart has no size");
  check((await canvasSize(page, "得分趋势")) > 0, "the trend chart has no size");
  await page.getByLabel("趋势对象").selectOption(story.village2.code);
  check((await canvasSize(page, "得分趋势")) > 0, "the trend chart vanished");

  // Drill-down: the response time counts the accepted case.
  await row(page, story.villageA.code).getByRole("button", { name: /平均响应时间/ }).click();
  const detail = page.getByRole("region", { name: "指标明细" });
  const caseLink = detail.locator(`a[href="#/cases/${story.caseId}"]`);
  await caseLink.waitFor();
  await detail.getByText("case.accepted").first().waitFor();
  await screenshot(page, "assessment-villages");

  // CSV through the same authenticated request.
  const downloaded = page.waitForEvent("download");
  await page.getByRole("button", { name: "导出 CSV" }).click();
  const file = await downloaded;
  check(file.suggestedFilename().endsWith(`-village-${story.month}.csv`), `CSV named ${file.suggestedFilename()}`);
  const csv = (await readFile(await file.path(), "utf8")).replace(/^\uFEFF/, "");
  const header = csv.split("\n")[0];
  check(header.startsWith("代码 code,名称 name,上级 parent,区域类型 kind,总分 total,排名 rank"), `CSV header: ${header}`);
  check(header.includes("水质达标率 (%) water_quality"), `CSV header lacks the external indicator: ${header}`);
  check(csv.includes(story.villageA.code), "the CSV lacks village A");
  await page.getByRole("status", { name: "台账记录" }).filter({ hasText: "已导出: CSV" }).waitFor();
  const pdfDownload = page.waitForEvent("download");
  await page.getByRole("button", { name: "导出 PDF" }).click();
  const pdf = await readFile(await (await pdfDownload).path());
  check(pdf.subarray(0, 5).toString() === "%PDF-", `the PDF export starts ${pdf.subarray(0, 8)}`);

  // The month under way cannot be closed: the server says so.
  await page.getByRole("button", { name: "关闭考核期" }).click();
  await page.getByRole("dialog", { name: "关闭考核期" }).getByRole("button", { name: "确认关闭" }).click();
  await page.getByRole("alert").filter({ hasText: "has not ended yet" }).waitFor();

  // Another department's value, entered in the form, lands in the table.
  const valueForm = page.getByRole("form", { name: "录入外部指标" });
  await valueForm.getByLabel("网格").fill(story.village2.code);
  check((await valueForm.getByLabel("考核期").inputValue()) === story.month, "the value form's period is not the shown one");
  await valueForm.getByLabel("数值").fill("61");
  await valueForm.getByLabel("佐证说明").fill("县水利局断面监测报告第12期");
  const evidence = Buffer.from("断面监测报告 第12期：达标率61%\n");
  await valueForm.getByLabel("附件").setInputFiles({ name: "监测报告.txt", mimeType: "text/plain", buffer: evidence });
  await valueForm.getByRole("button", { name: "录入" }).click();
  await page.getByRole("status", { name: "录入外部指标" }).filter({ hasText: /已录入并记入台账: .* \d{6}\/\d+/ }).waitFor();
  const water2 = row(page, story.village2.code).getByRole("button", { name: /水质达标率/ });
  await water2.filter({ hasText: /^61 \/ 2.5/ }).waitFor();
  // Its drill-down is the entered value, whose attachment downloads as entered.
  await water2.click();
  await detail.getByText("外部指标数值 (value)").waitFor();
  const attached = page.waitForEvent("download");
  await detail.getByRole("button", { name: "下载附件" }).click();
  const got = await readFile(await (await attached).path());
  check(got.equals(evidence), `the attachment came back as ${got.length} bytes`);

  // Close the previous month, with a confirmation; its ledger record is shown.
  await showMonth(page, story.prev);
  const dialog = page.getByRole("dialog", { name: "关闭考核期" });
  await page.getByRole("button", { name: "关闭考核期" }).click();
  await dialog.getByRole("button", { name: "取消" }).click();
  await dialog.waitFor({ state: "hidden" });
  await page.getByRole("status", { name: "考核期" }).filter({ hasText: "未关闭" }).waitFor();
  await page.getByRole("button", { name: "关闭考核期" }).click();
  await dialog.getByText(`确认关闭考核期 ${story.prev}?`).waitFor();
  await dialog.getByRole("button", { name: "确认关闭" }).click();
  await page.getByRole("status", { name: "台账记录" }).filter({ hasText: new RegExp(`已关闭并记入台账: ${story.county}/\\d+`) }).waitFor();
  await page.getByRole("status", { name: "考核期" }).filter({ hasText: "已关闭（评分已冻结）" }).waitFor();
  check(await page.getByRole("button", { name: "关闭考核期" }).isDisabled(), "a closed period can be closed again");
  await screenshot(page, "assessment-closed");

  // A value about the closed month counts in this one, flagged late.
  await valueForm.getByLabel("网格").fill(story.village3.code);
  await valueForm.getByLabel("数值").fill("70");
  await valueForm.getByLabel("佐证说明").fill("补报：县生态环境局上月监测数据");
  await valueForm.getByRole("button", { name: "录入" }).click();
  await page.getByRole("status", { name: "录入外部指标" }).filter({ hasText: "计入下一期并标记迟报" }).waitFor();
  await showMonth(page, story.month);
  await row(page, story.village3.code).getByText(/迟报 1/).waitFor();
  await screenshot(page, "assessment-late");

  // Townships and people are scorecards too.
  const form = page.getByRole("form", { name: "考核条件" });
  await form.getByLabel("层级").selectOption("SCORECARD_LEVEL_PERSON");
  await form.getByRole("button", { name: "查询" }).click();
  await page.getByRole("table", { name: "考核排名" }).getByRole("link").first().waitFor();
  await form.getByLabel("层级").selectOption("SCORECARD_LEVEL_TOWNSHIP");
  await form.getByRole("button", { name: "查询" }).click();
  await row(page, story.township).waitFor();

  // The drilled case opens from the list.
  await showMonth(page, story.month);
  await row(page, story.villageA.code).getByRole("button", { name: /平均响应时间/ }).click();
  await caseLink.click();
  await page.getByRole("heading", { name: /已受理/ }).waitFor();
  await page.goBack();
  await page.getByRole("button", { name: "English" }).click();
  await page.getByRole("heading", { name: /Assessment scorecards/ }).waitFor();
  await page.getByRole("table", { name: "Ranking" }).waitFor();
  await screenshot(page, "assessment-english");
  await page.context().close();
});

for (const who of ["supervisor", "outsider"]) {
  await run(`the ${who} is offered no assessment and refused it`, async () => {
    const page = await signIn(story.users[who]);
    const entries = await page.getByRole("navigation", { name: "main" }).getByRole("link", { name: "考核评分" }).count();
    check(entries === 0, `the ${who} is offered the assessment`);
    await page.goto(`${url}#/assessment`);
    await page.getByRole("alert").filter({ hasText: "您无权执行此操作" }).waitFor();
    check((await page.getByRole("table", { name: "考核排名" }).count()) === 0, `the ${who} sees scorecards`);
    await screenshot(page, `assessment-${who}`);
    await page.context().close();
  });
}

await browser.close();
for (const p of problems) console.log(`PROBLEM ${p}`);
process.exit(problems.length ? 1 : 0);
