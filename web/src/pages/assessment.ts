import { base64Bytes, call, newRequestId, saveFile, type Response } from "../api/client";
import type { v1Figure, v1FigureItem, v1Indicator, v1Scorecard, v1ScorecardFormat, v1ScorecardLevel } from "../api/generated";
import { clear, fmtTime, h } from "../dom";
import { indicatorName, kindName, ledgerActionName, t } from "../i18n";
import { heading, showError } from "./common";

type Kind = "month" | "quarter" | "year";

// What the user chose, kept across renders (a language switch re-renders).
const chosen: { level: v1ScorecardLevel; kind: Kind; year: number; which: number; parent: string; trendOf: string } = (() => {
  const cst = new Date(Date.now() + 8 * 3600e3); // periods are in China Standard Time
  return { level: "SCORECARD_LEVEL_VILLAGE", kind: "month", year: cst.getUTCFullYear(), which: cst.getUTCMonth() + 1, parent: "", trendOf: "" };
})();

/** periodLabel is the API's name of the chosen period: 2026-03, 2026-Q1 or 2026. */
function periodLabel(): string {
  const y = String(chosen.year).padStart(4, "0");
  if (chosen.kind === "year") return y;
  if (chosen.kind === "quarter") return `${y}-Q${chosen.which}`;
  return `${y}-${String(chosen.which).padStart(2, "0")}`;
}

/** say puts a message in a status line (which an earlier error may have made an alert). */
function say(el: HTMLElement, text: string): void {
  el.setAttribute("role", "status");
  el.textContent = text;
}

function fmt(n?: number): string {
  return n === undefined ? "0" : String(Math.round(n * 100) / 100);
}

/** toBase64 encodes a file's bytes as a protobuf bytes field in JSON. */
function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** subjectCell names what an item counts: a case links to its page, an entered value offers its attachment. */
function subjectCell(it: v1FigureItem): Node | string {
  const id = it.subjectId ?? "";
  if (it.subjectType === "case") return h("a", { href: `#/cases/${encodeURIComponent(id)}` }, `${t("caseDetail")} ${id.slice(0, 8)}`);
  if (it.subjectType !== "indicator_value") return `${it.subjectType ?? ""} ${id}`;
  const cell = h("span", {}, `${it.subjectType} ${id.slice(0, 8)} `);
  cell.append(
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          try {
            const r = await call("AssessmentService_GetIndicatorValueAttachment", { valueId: id });
            saveFile(r.name || `value-${id}`, r.contentType || "application/octet-stream", [base64Bytes(r.data ?? "")]);
          } catch (e) {
            const p = h("span", {});
            cell.append(p);
            showError(p, e);
          }
        },
      },
      t("downloadAttachment"),
    ),
  );
  return cell;
}

/**
 * renderAssessment is the county office's assessment (考核): scorecards of
 * villages, townships or people for a month, quarter or year, ranked
 * among siblings, with the totals and a subject's trend as charts, each
 * figure drillable to what it counts, exports, closing a period and
 * entering other departments' values. Every call goes through the
 * server's policy: whoever it refuses sees its refusal here. countyCode is
 * the signed-in user's county, as the shell read it from WhoAmI.
 */
export async function renderAssessment(main: HTMLElement, countyCode: string): Promise<void> {
  const [cat, county] = await Promise.all([call("AssessmentService_ListIndicators", { countyCode }), call("GridService_GetNode", { code: countyCode })]);
  const townships = (await call("GridService_ListChildren", { nodeId: county.node?.id ?? "" })).nodes ?? [];
  const catalogue: v1Indicator[] = cat.indicators ?? [];
  const byCode = new Map(catalogue.map((i) => [i.code ?? "", i]));
  clear(main);

  // The query form.
  const level = h(
    "select",
    { id: "as-level" },
    h("option", { value: "SCORECARD_LEVEL_VILLAGE" }, t("levelVillage")),
    h("option", { value: "SCORECARD_LEVEL_TOWNSHIP" }, t("levelTownship")),
    h("option", { value: "SCORECARD_LEVEL_PERSON" }, t("levelPerson")),
  );
  const kind = h("select", { id: "as-kind" }, h("option", { value: "month" }, t("month")), h("option", { value: "quarter" }, t("quarter")), h("option", { value: "year" }, t("year")));
  const year = h("input", { id: "as-year", type: "number", min: 2000, max: 2200, required: true });
  const which = h("select", { id: "as-which" });
  const parent = h("select", { id: "as-parent" }, h("option", { value: "" }, t("allTownships")), ...townships.map((n) => h("option", { value: n.code ?? "" }, `${n.name ?? ""} (${n.code ?? ""})`)));
  level.value = chosen.level;
  kind.value = chosen.kind;
  year.value = String(chosen.year);
  parent.value = chosen.parent;
  const fillWhich = () => {
    clear(which);
    const n = kind.value === "month" ? 12 : kind.value === "quarter" ? 4 : 0;
    for (let i = 1; i <= n; i++) which.append(h("option", { value: i }, kind.value === "month" ? `${i}` : `Q${i}`));
    which.disabled = n === 0;
    which.value = String(Math.min(chosen.which, Math.max(n, 1)));
  };
  fillWhich();
  parent.disabled = level.value === "SCORECARD_LEVEL_TOWNSHIP";
  kind.addEventListener("change", () => {
    chosen.which = kind.value === "quarter" ? Math.ceil(chosen.which / 3) : kind.value === "month" ? (chosen.which - 1) * 3 + 1 : chosen.which;
    fillWhich();
  });
  level.addEventListener("change", () => (parent.disabled = level.value === "SCORECARD_LEVEL_TOWNSHIP"));
  const form = h(
    "form",
    { "aria-label": t("scoreQuery") },
    h("label", { for: "as-level" }, t("level")),
    level,
    h("label", { for: "as-kind" }, t("periodKind")),
    kind,
    h("label", { for: "as-year" }, t("yearOf")),
    year,
    h("label", { for: "as-which" }, t("monthOrQuarter")),
    which,
    h("label", { for: "as-parent" }, t("parentTownship")),
    parent,
    h("button", { type: "submit" }, t("show")),
  );

  const status = h("p", { role: "status", "aria-label": t("period") });
  const out = h("p", { role: "status", "aria-label": t("ledgerRecord") });
  const tableWrap = h("div", { class: "scroll" });
  const bars = h("div", { class: "chart wide", role: "img", "aria-label": t("totalsChart") });
  const trendPick = h("select", { id: "as-trend" });
  const line = h("div", { class: "chart", role: "img", "aria-label": t("trendChart") });
  const detail = h("section", { "aria-label": t("drillDown") });
  const exports = h("div", { role: "group", "aria-label": "export" });
  const closeButton = h("button", { type: "button" }, t("closePeriod"));
  const dialogText = h("p", {});
  const dialog = h(
    "dialog",
    { "aria-label": t("closePeriod") },
    dialogText,
    h("button", { type: "button", onclick: () => dialog.close("yes") }, t("confirm")),
    " ",
    h("button", { type: "button", onclick: () => dialog.close("no") }, t("cancel")),
  );

  // After a value is entered the scorecards of the shown period are read again.
  const values = valueForm(catalogue, () => load());
  let last: Response<"AssessmentService_GetScorecards"> | null = null;
  const request = (format: v1ScorecardFormat = "SCORECARD_FORMAT_UNSPECIFIED") => ({
    countyCode,
    period: periodLabel(),
    level: chosen.level,
    parentCode: chosen.level === "SCORECARD_LEVEL_TOWNSHIP" ? "" : chosen.parent,
    trendPeriods: 6,
    format,
  });

  const drawTrend = async (cards: v1Scorecard[]) => {
    const card = cards.find((c) => c.code === chosen.trendOf) ?? cards[0];
    if (!card) return;
    trendPick.value = card.code ?? "";
    const points = [...(card.trend ?? [])].reverse();
    const { trendLine } = await import("../linechart");
    trendLine(
      line,
      `${t("trendChart")}: ${card.name ?? card.code ?? ""}`,
      [...points.map((p) => p.period ?? ""), last?.period ?? periodLabel()],
      [...points.map((p) => (p.found ? (p.total ?? 0) : null)), card.total ?? 0],
    );
  };

  const showDetail = async (card: v1Scorecard, f: v1Figure) => {
    clear(detail);
    detail.append(h("p", {}, t("loading")));
    try {
      const r = await call("AssessmentService_GetFigureDetail", { countyCode, period: periodLabel(), level: chosen.level, code: card.code ?? "", indicator: f.indicator ?? "" });
      const fig = r.figure ?? {};
      const ind = byCode.get(fig.indicator ?? "");
      clear(detail);
      detail.append(
        h("h2", {}, `${t("drillDown")}: ${card.name ?? ""} · ${indicatorName(fig.indicator ?? "", ind?.name)}`),
        h(
          "p",
          {},
          `${t("value")} ${fmt(fig.value)}${ind?.unit ?? ""} · ${t("score")} ${fmt(fig.score)} · ${t("weight")} ${fmt(fig.weight)} · ${fig.itemCount ?? 0} ${t("items")}`,
          fig.lateItems ? h("span", { class: "tag" }, `${t("late")} ${fig.lateItems}`) : null,
          r.closed ? h("span", { class: "tag frozen" }, t("periodClosed")) : null,
        ),
        h(
          "table",
          { "aria-label": t("drillDown") },
          h("thead", {}, h("tr", {}, h("th", {}, t("time")), h("th", {}, t("action")), h("th", {}, t("subject")), h("th", {}, t("area")), h("th", {}, t("ledgerRecord")))),
          h(
            "tbody",
            {},
            ...(fig.items ?? []).slice(0, 1000).map((it) =>
              h(
                "tr",
                {},
                h("td", {}, fmtTime(it.at)),
                h("td", { title: it.action ?? "" }, `${ledgerActionName(it.action || it.kind)} (${it.action || it.kind || ""})`),
                h("td", {}, subjectCell(it)),
                h("td", {}, it.nodeCode ?? ""),
                h("td", {}, it.ref ?? "", it.late ? h("span", { class: "tag" }, t("late")) : null),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      clear(detail);
      const p = h("p", {});
      detail.append(p);
      showError(p, e);
    }
  };

  const draw = (r: Response<"AssessmentService_GetScorecards">) => {
    const cards = [...(r.scorecards ?? [])].sort((a, b) => (a.parentCode ?? "").localeCompare(b.parentCode ?? "") || (a.rank ?? 0) - (b.rank ?? 0));
    say(status, `${t("period")} ${r.period ?? ""}: ${fmtTime(r.fromTime)} – ${fmtTime(r.toTime)} · `);
    status.append(h("span", { class: r.closed ? "tag frozen" : "tag open" }, r.closed ? t("periodClosed") : t("periodOpen")));
    closeButton.disabled = Boolean(r.closed);
    clear(tableWrap);
    clear(trendPick);
    if (cards.length === 0) {
      tableWrap.append(h("p", {}, t("noScorecards")));
      void import("../chart").then(({ dispose }) => dispose(bars, line));
      values.update(r.period ?? periodLabel(), townships);
      return;
    }
    const shown = catalogue.filter((ind) => cards.some((c) => (c.figures ?? []).some((f) => f.indicator === ind.code && f.applicable)));
    const head = h(
      "tr",
      {},
      h("th", {}, t("rank")),
      h("th", {}, t("name")),
      h("th", {}, chosen.level === "SCORECARD_LEVEL_PERSON" ? t("parentTownship") : t("code")),
      h("th", {}, t("areaKind")),
      h("th", {}, t("total")),
      h("th", {}, t("late")),
      ...shown.map((ind) => h("th", { title: ind.definition ?? "" }, `${indicatorName(ind.code ?? "", ind.name)} (${ind.unit ?? ""})`)),
    );
    const rows = cards.map((c) => {
      const name = chosen.level === "SCORECARD_LEVEL_PERSON" ? h("a", { href: `#/people/${encodeURIComponent(c.code ?? "")}` }, c.name ?? "") : c.name ?? "";
      return h(
        "tr",
        { "data-code": c.code ?? "" },
        h("td", {}, `${c.rank ?? 0}/${c.siblings ?? 0}`),
        h("th", { scope: "row" }, name),
        h("td", {}, chosen.level === "SCORECARD_LEVEL_PERSON" ? (c.parentCode ?? "") : (c.code ?? "")),
        h("td", {}, kindName(c.areaKind)),
        h("td", { class: "num total" }, fmt(c.total)),
        h("td", {}, c.lateItems ? h("span", { class: "tag" }, `${t("late")} ${c.lateItems}`) : ""),
        ...shown.map((ind) => {
          const f = (c.figures ?? []).find((x) => x.indicator === ind.code);
          if (!f?.applicable) return h("td", {}, "—");
          const label = `${c.name ?? ""} ${indicatorName(ind.code ?? "", ind.name)}`;
          return h(
            "td",
            { class: "num" },
            h("button", { type: "button", class: "figure", "aria-label": label, onclick: () => void showDetail(c, f) }, `${fmt(f.value)} / ${fmt(f.score)}`),
            f.lateItems ? h("span", { class: "tag" }, t("late")) : null,
          );
        }),
      );
    });
    tableWrap.append(h("table", { "aria-label": t("scoreTable") }, h("thead", {}, head), h("tbody", {}, ...rows)));
    values.update(r.period ?? periodLabel(), chosen.level === "SCORECARD_LEVEL_PERSON" ? townships : [...cards, ...townships]);
    for (const c of cards) trendPick.append(h("option", { value: c.code ?? "" }, c.name ?? c.code ?? ""));
    void import("../chart").then(({ scoreBars }) =>
      scoreBars(
        bars,
        `${t("totalsChart")} · ${r.period ?? ""}`,
        cards.map((c) => c.name ?? c.code ?? ""),
        cards.map((c) => c.total ?? 0),
        (i) => {
          chosen.trendOf = cards[i]?.code ?? "";
          void drawTrend(cards);
        },
      ),
    );
    void drawTrend(cards);
  };

  const load = async () => {
    say(status, t("loading"));
    clear(detail);
    try {
      last = await call("AssessmentService_GetScorecards", request());
      draw(last);
    } catch (e) {
      showError(status, e);
    }
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    chosen.level = level.value as v1ScorecardLevel;
    chosen.kind = kind.value as Kind;
    chosen.year = Number(year.value);
    chosen.which = Number(which.value || 1);
    chosen.parent = parent.value;
    say(out, "");
    void load();
  });
  trendPick.addEventListener("change", () => {
    chosen.trendOf = trendPick.value;
    if (last) void drawTrend(last.scorecards ?? []);
  });

  for (const [format, label, ext] of [
    ["SCORECARD_FORMAT_CSV", t("exportCsv"), "csv"],
    ["SCORECARD_FORMAT_XLSX", t("exportXlsx"), "xlsx"],
    ["SCORECARD_FORMAT_PDF", t("exportPdf"), "pdf"],
  ] as const) {
    exports.append(
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            say(out, t("loading"));
            try {
              // The same authenticated POST as every call: no token in a URL.
              const r = await call("AssessmentService_GetScorecards", { ...request(format), trendPeriods: 0 });
              const level = chosen.level.replace("SCORECARD_LEVEL_", "").toLowerCase();
              saveFile(`scorecards-${countyCode}-${level}-${r.period ?? periodLabel()}.${ext}`, r.contentType ?? "application/octet-stream", [base64Bytes(r.document ?? "")]);
              say(out, `${t("exported")}: ${ext.toUpperCase()}`);
            } catch (e) {
              showError(out, e);
            }
          },
        },
        label,
      ),
      " ",
    );
  }

  closeButton.addEventListener("click", () => {
    const p = periodLabel();
    dialogText.textContent = `${t("confirmClose")} ${p}?`;
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      async () => {
        if (dialog.returnValue !== "yes") return;
        say(out, t("loading"));
        try {
          const r = await call("AssessmentService_ClosePeriod", { countyCode, period: p });
          say(out, `${t("periodClosedAt")}: ${r.ledgerRecord ?? ""} · ${fmtTime(r.closedAt)}`);
          await load();
        } catch (e) {
          showError(out, e);
        }
      },
      { once: true },
    );
    dialog.showModal();
  });

  main.append(
    heading(`${t("assessment")} · ${t("county")} ${countyCode}`),
    form,
    status,
    exports,
    closeButton,
    dialog,
    out,
    tableWrap,
    h("div", { class: "charts" }, bars, h("div", {}, h("label", { for: "as-trend" }, t("trendOf")), " ", trendPick, line)),
    detail,
    values.section ?? "",
  );
  await load();
}

/**
 * valueForm enters an external indicator's value (another department's
 * figure) for a village or township and the chosen period, with its
 * evidence note and an optional attachment; the server ledgers it.
 */
function valueForm(catalogue: v1Indicator[], reload: (period: string) => Promise<void>): { section: HTMLElement | null; update: (period: string, nodes: Array<{ code?: string; name?: string }>) => void } {
  const external = catalogue.filter((i) => i.source === "external");
  const periodIn = h("input", { id: "val-period", required: true, minlength: 4, maxlength: 16 });
  const nodes = h("datalist", { id: "val-nodes" });
  const update = (period: string, ns: Array<{ code?: string; name?: string }>) => {
    periodIn.value = period;
    nodes.replaceChildren(...ns.map((n) => h("option", { value: n.code ?? "" }, n.name ?? "")));
  };
  if (external.length === 0) return { section: null, update };
  const indicator = h("select", { id: "val-indicator" }, ...external.map((i) => h("option", { value: i.code ?? "" }, `${i.name ?? ""} (${i.unit ?? ""})`)));
  const node = h("input", { id: "val-node", required: true, pattern: "[0-9]{9}([0-9]{3}){0,5}", list: "val-nodes" });
  const value = h("input", { id: "val-value", type: "number", step: "any", required: true });
  const evidence = h("textarea", { id: "val-evidence", required: true, maxlength: 2000, rows: 2 });
  const file = h("input", { id: "val-file", type: "file" });
  const result = h("p", { role: "status", "aria-label": t("recordValue") });
  const form = h(
    "form",
    { "aria-label": t("recordValue") },
    h("label", { for: "val-indicator" }, t("indicator")),
    indicator,
    h("label", { for: "val-node" }, t("area")),
    node,
    nodes,
    h("label", { for: "val-period" }, t("period")),
    periodIn,
    h("label", { for: "val-value" }, t("value")),
    value,
    h("label", { for: "val-evidence" }, t("evidence")),
    evidence,
    h("label", { for: "val-file" }, t("attachment")),
    file,
    h("button", { type: "submit" }, t("record")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(result, t("loading"));
    try {
      const f = file.files?.[0];
      const r = await call("AssessmentService_RecordIndicatorValue", {
        valueId: newRequestId(),
        nodeCode: node.value.trim(),
        period: periodIn.value.trim(),
        indicator: indicator.value,
        value: Number(value.value),
        evidenceNote: evidence.value,
        attachmentName: f?.name ?? "",
        attachmentType: f?.type ?? "",
        attachment: f ? toBase64(new Uint8Array(await f.arrayBuffer())) : "",
      });
      const v = r.value ?? {};
      say(result, `${t("valueRecorded")}: ${v.nodeCode ?? ""} ${v.period ?? ""} ${fmt(v.value)} · ${v.ledgerRecord ?? ""}`);
      if (v.late) result.append(h("span", { class: "tag" }, t("lateValue")));
      await reload(v.period ?? "");
    } catch (e) {
      showError(result, e);
    }
  });
  return { section: h("section", { "aria-label": t("recordValue") }, h("h2", {}, t("recordValue")), form, result), update };
}
