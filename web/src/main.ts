// The console's shell: a header with the pages and the session, and a
// hash router (#/board, #/cases/<id>, #/map, #/people/<id>, #/ledger,
// #/extensions, #/handover/<person id>, #/import, #/assessment).
// Heavy parts (OpenLayers, ECharts) load only with the page that needs them.
import "./style.css";
import { call, currentSession, logout, onSessionChange, refresh } from "./api/client";
import { clear, h } from "./dom";
import { getLang, setLang, t } from "./i18n";
import { showError } from "./pages/common";
import { renderSignIn } from "./pages/signin";
import { renderBoard } from "./pages/board";
import { renderCase } from "./pages/case";
import { renderPeople, renderPerson } from "./pages/person";
import { renderLedger } from "./pages/ledger";
import { renderExtensions } from "./pages/extensions";
import { renderHandover } from "./pages/handover";

const app = document.getElementById("app")!;
let me: { name: string; grants: string[]; county: string; assess: boolean } | null = null;

// asking is the WhoAmI in flight, so that a page needing its answer waits
// for the shell's call instead of asking again.
let asking: Promise<void> | null = null;

function whoAmI(): Promise<void> {
  if (me || !currentSession()) return Promise.resolve();
  asking ??= askWhoAmI().finally(() => {
    asking = null;
  });
  return asking;
}

async function askWhoAmI(): Promise<void> {
  const r = await call("AuthService_WhoAmI", {});
  const county = r.person?.countyCode || (r.grants ?? []).map((g) => (g.nodeCode ?? "").slice(0, 6)).find((c) => c.length === 6) || "";
  // The assessment entry is offered when the server answers its catalogue:
  // its policy decides, not a copy of it here.
  const assess = county !== "" && (await call("AssessmentService_ListIndicators", { countyCode: county }).then(() => true, () => false));
  me = { name: r.person?.name ?? r.username ?? "", grants: (r.grants ?? []).map((g) => `${g.role ?? ""}@${g.nodeCode ?? ""}`), county, assess };
}

function header(): HTMLElement {
  const link = (hash: string, label: string) => h("a", { href: hash, "aria-current": location.hash.startsWith(hash) ? "page" : undefined }, label);
  return h(
    "header",
    {},
    h("strong", {}, t("appName")),
    h("nav", { "aria-label": "main" }, link("#/board", t("board")), link("#/map", t("map")), link("#/people", t("people")), link("#/ledger", t("ledger")), link("#/extensions", t("extensions")), link("#/import", t("gridImport")), me?.assess ? link("#/assessment", t("assessment")) : null),
    h("span", { class: "me" }, me?.name ?? ""),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          const ok = await refresh();
          const s = document.getElementById("status");
          if (s) s.textContent = ok ? t("sessionRefreshed") : t("sessionExpired");
        },
      },
      t("refresh"),
    ),
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          setLang(getLang() === "zh-CN" ? "en" : "zh-CN");
          void route();
        },
      },
      t("language"),
    ),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          await logout();
          me = null;
          location.hash = "#/signin";
        },
      },
      t("signOut"),
    ),
  );
}

// generation counts route() calls: a render that an newer one has
// overtaken (a hash change during sign-in, say) never reaches the page.
let generation = 0;

async function route(): Promise<void> {
  const gen = ++generation;
  if (!currentSession()) {
    clear(app);
    renderSignIn(app, () => {
      if (location.hash.startsWith("#/board")) void route();
      else location.hash = "#/board";
    });
    return;
  }
  const main = h("main", {});
  const status = h("p", { id: "status", role: "status" });
  // The page loads beside WhoAmI; the header gets the name when it comes.
  const top = h("div", {}, header());
  app.replaceChildren(top, status, main);
  whoAmI().then(
    () => gen === generation && top.replaceChildren(header()),
    (e) => currentSession() && showError(status, e),
  );
  const [, page = "board", id = ""] = location.hash.split("/");
  try {
    switch (page) {
      case "cases":
        await renderCase(main, decodeURIComponent(id));
        break;
      case "map": {
        const { renderMap } = await import("./pages/map");
        await renderMap(main);
        break;
      }
      case "people":
        await (id ? renderPerson(main, decodeURIComponent(id)) : renderPeople(main));
        break;
      case "ledger":
        await renderLedger(main);
        break;
      case "extensions":
        await renderExtensions(main);
        break;
      case "handover":
        await renderHandover(main, decodeURIComponent(id));
        break;
      case "import": {
        const { renderImport } = await import("./pages/importgrid");
        await renderImport(main);
        break;
      }
      case "assessment": {
        const { renderAssessment } = await import("./pages/assessment");
        await whoAmI(); // the page is of the user's county
        await renderAssessment(main, me?.county ?? "");
        break;
      }
      default:
        await renderBoard(main, currentSession()?.personId ?? "");
    }
  } catch (e) {
    showError(status, e);
  }
}

onSessionChange(() => {
  if (!currentSession()) {
    me = null;
    void route();
  }
});
window.addEventListener("hashchange", () => void route());
void route();
