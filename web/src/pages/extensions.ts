import { call } from "../api/client";
import type { v1Case } from "../api/generated";
import { clear, fmtTime, h } from "../dom";
import { actionName, stateName, t } from "../i18n";
import { listAllCases } from "./board";
import { heading, showError } from "./common";
import { stepForm } from "./case";

/**
 * renderExtensions is the supervisor's extension approvals (延期审批): every
 * case the user may see with an extension request pending, the days and
 * reason asked, and the approve and decline steps the server offers this
 * user for each (a supervisor never decides their own request).
 */
export async function renderExtensions(main: HTMLElement): Promise<void> {
  const all = await listAllCases({});
  const pending = all.filter((c) => (c.pendingExtensionDays ?? 0) > 0);
  // The list carries no per-user steps: each pending case is read once for them.
  const full = await Promise.all(pending.map((c) => call("CaseService_GetCase", { caseId: c.id ?? "" }).then((r) => r.case as v1Case)));
  clear(main);
  main.append(heading(t("extensions")));
  if (full.length === 0) {
    main.append(h("p", {}, t("noExtensions")));
    return;
  }
  const rows = h("tbody", {});
  for (const c of full) {
    const decide = (c.yourSteps ?? []).filter((a) => a === "CASE_ACTION_APPROVE_EXTENSION" || a === "CASE_ACTION_DECLINE_EXTENSION");
    const cell = h("td", {});
    if (decide.length === 0) cell.append(t("noActions"));
    for (const a of decide) {
      const f = stepForm(c, a, [], () => void renderExtensions(main).catch((e) => showError(cell, e)));
      if (f) cell.append(f);
    }
    rows.append(
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: `#/cases/${encodeURIComponent(c.id ?? "")}` }, `${c.category ?? ""} · ${c.villageCode ?? ""}`)),
        h("td", {}, stateName(c.state)),
        h("td", {}, fmtTime(c.deadline)),
        h("td", {}, `${c.pendingExtensionDays ?? 0} ${t("days")}`),
        h("td", {}, c.pendingExtensionReason ?? ""),
        cell,
      ),
    );
  }
  main.append(
    h(
      "table",
      { "aria-label": t("extensions") },
      h(
        "thead",
        {},
        h("tr", {}, h("th", {}, t("caseDetail")), h("th", {}, t("state")), h("th", {}, t("deadline")), h("th", {}, actionName("CASE_ACTION_REQUEST_EXTENSION")), h("th", {}, t("reason")), h("th", {}, t("actions"))),
      ),
      rows,
    ),
  );
}
