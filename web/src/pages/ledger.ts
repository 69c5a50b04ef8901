import { base64Bytes, call, download, saveFile } from "../api/client";
import { clear, fmtTime, h } from "../dom";
import { t } from "../i18n";
import { heading, showError } from "./common";

/**
 * renderLedger is the county office's view of the accountability ledger:
 * the county chain's signed checkpoints and a verification on demand.
 */
export async function renderLedger(main: HTMLElement): Promise<void> {
  const who = await call("AuthService_WhoAmI", {});
  const countyCode = who.person?.countyCode ?? "";
  const [cps, key] = await Promise.all([call("AccountabilityService_ListCheckpoints", { countyCode, page: { pageSize: 100 } }), call("AccountabilityService_GetPublicKey", {})]);
  clear(main);
  const result = h("p", { role: "status" });
  const checkpoints = cps.checkpoints ?? [];
  main.append(
    heading(`${t("ledger")} · ${t("county")} ${countyCode}`),
    h("p", {}, h("code", {}, key.publicKey ?? "")),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          result.textContent = t("loading");
          try {
            const v = await call("AccountabilityService_VerifyChain", { countyCode });
            result.textContent = v.ok ? `${t("verifyOk")}: ${v.records ?? 0} ${t("records")}, ${v.checkpoints ?? 0} ${t("checkpoints")}` : `${t("verifyBad")}: #${v.firstBadSeq ?? ""} ${v.reason ?? ""}`;
          } catch (e) {
            showError(result, e);
          }
        },
      },
      t("verify"),
    ),
    " ",
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          result.textContent = t("loading");
          try {
            // The whole chain as JSON Lines, with the checkpoints: what
            // `gridctl audit verify` checks offline.
            const parts = (await download("AccountabilityService_Export", { countyCode })).map((m) => base64Bytes(m.result?.chunk ?? ""));
            const bytes = parts.reduce((n, p) => n + p.length, 0);
            saveFile(`ledger-${countyCode}.jsonl`, "application/x-ndjson", parts);
            result.textContent = `${t("exported")}: ${bytes} bytes`;
          } catch (e) {
            showError(result, e);
          }
        },
      },
      t("exportLedger"),
    ),
    result,
    h(
      "section",
      { "aria-label": t("checkpoints") },
      h("h2", {}, t("checkpoints")),
      h("table", {}, h("tbody", {}, ...checkpoints.map((c) => h("tr", {}, h("td", {}, c.size ?? ""), h("td", {}, fmtTime(c.createTime)), h("td", {}, c.keyName ?? ""))))),
    ),
  );
  if (checkpoints.length > 0) {
    const chart = h("div", { class: "chart", role: "img", "aria-label": t("checkpoints") });
    main.append(chart);
    const { barChart } = await import("../chart");
    barChart(
      chart,
      t("checkpoints"),
      checkpoints.map((c) => fmtTime(c.createTime)),
      checkpoints.map((c) => Number(c.size ?? 0)),
    );
  }
}
