import { call } from "../api/client";
import type { v1Case } from "../api/generated";
import { clear, fmtTime, h } from "../dom";
import { stateName, t } from "../i18n";
import { handlersFor, stepForm } from "./case";
import { heading, showError } from "./common";

/**
 * renderHandover is a person's handover list (交接清单): the open cases
 * they hold as supervisor or handler within the user's area, oldest first,
 * each with the reassignment the server allows this user, so that nothing
 * is left with someone who has moved post.
 */
export async function renderHandover(main: HTMLElement, personId: string): Promise<void> {
  const [{ person }, list] = await Promise.all([call("PeopleService_GetPerson", { personId }), call("CaseService_ListHandoverCases", { personId })]);
  const cases = await Promise.all((list.cases ?? []).map((c) => call("CaseService_GetCase", { caseId: c.id ?? "" }).then((r) => r.case as v1Case)));
  clear(main);
  main.append(heading(`${t("handover")}: ${person?.name ?? ""}`), h("p", {}, h("a", { href: `#/people/${encodeURIComponent(personId)}` }, t("person"))));
  if (cases.length === 0) {
    main.append(h("p", {}, t("noHandover")));
    return;
  }
  // One ListResponsible per village, however many of the cases lie in it.
  const byVillage = new Map<string, ReturnType<typeof handlersFor>>();
  const villageHandlers = (c: v1Case) => {
    const key = c.villageCode ?? "";
    let p = byVillage.get(key);
    if (!p) byVillage.set(key, (p = handlersFor(c)));
    return p;
  };
  const rows = h("tbody", {});
  for (const c of cases) {
    const cell = h("td", {});
    const role = c.handlerId === personId ? t("handler") : t("supervisor");
    if ((c.yourSteps ?? []).includes("CASE_ACTION_REASSIGN")) {
      const handlers = c.handlerId ? (await villageHandlers(c)).filter((p) => p.personId !== personId) : [];
      const f = stepForm(c, "CASE_ACTION_REASSIGN", handlers, () => void renderHandover(main, personId).catch((e) => showError(cell, e)));
      if (f) cell.append(f);
    } else {
      cell.append(t("noActions"));
    }
    rows.append(
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: `#/cases/${encodeURIComponent(c.id ?? "")}` }, `${c.category ?? ""} · ${c.villageCode ?? ""}`)),
        h("td", {}, stateName(c.state)),
        h("td", {}, role),
        h("td", {}, fmtTime(c.deadline)),
        h("td", {}, c.overdue ? `${t("overdue")} ${c.overdueDays ?? 0} ${t("days")}` : "—"),
        cell,
      ),
    );
  }
  main.append(
    h(
      "table",
      { "aria-label": t("handover") },
      h("thead", {}, h("tr", {}, h("th", {}, t("caseDetail")), h("th", {}, t("state")), h("th", {}, t("heldAs")), h("th", {}, t("deadline")), h("th", {}, t("overdue")), h("th", {}, t("actions")))),
      rows,
    ),
  );
}
