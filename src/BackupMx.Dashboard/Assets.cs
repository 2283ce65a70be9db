namespace BackupMx.Dashboard;

/// <summary>
/// The dashboard's stylesheet and script, served from the endpoint itself: no CDN, no build step,
/// and it works with no network at all. The script only refreshes the tables; every action is a
/// plain form, so the dashboard works without it too.
/// </summary>
public static class Assets
{
    // Colours: text #1a1a1a on #ffffff (17:1), links #0b4fa8 (8:1), buttons white on #0b4fa8,
    // "down" #a4161a (8:1) always with its word, never colour alone (WCAG 1.4.1, 1.4.3).
    public const string Css = """
        :root { color-scheme: light; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff; }
        header { background: #f0f3f7; border-bottom: 1px solid #c4ccd6; padding: .5rem 1rem; }
        .brand { margin: 0; font-weight: 600; }
        .brand span { font-weight: 400; color: #3d4651; margin-left: .5rem; }
        main { padding: 1rem; max-width: 90rem; }
        main:focus { outline: none; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
        h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
        a { color: #0b4fa8; }
        a:focus-visible, button:focus-visible, input:focus-visible { outline: 3px solid #b35900; outline-offset: 2px; }
        .skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
        .skip:focus { left: .5rem; }
        table { border-collapse: collapse; width: 100%; }
        caption { text-align: left; padding: .25rem 0; color: #3d4651; }
        th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #c4ccd6; vertical-align: top; }
        th { background: #f0f3f7; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .state-down { color: #a4161a; font-weight: 700; }
        .state-up { color: #1b5e20; font-weight: 700; }
        .state-unknown { color: #3d4651; }
        button { font: inherit; color: #fff; background: #0b4fa8; border: 1px solid #0b4fa8; border-radius: 4px; padding: .3rem .8rem; cursor: pointer; }
        button:hover { background: #083b7d; }
        form.inline { display: inline; margin: 0; }
        a.button { display: inline-block; text-decoration: none; border-radius: 4px; padding: .3rem .8rem; border: 1px solid #a4161a; color: #a4161a; background: #fff; }
        button.danger { background: #a4161a; border-color: #a4161a; }
        button.danger:hover { background: #7d1114; }
        a.button:hover { background: #fdeeee; }
        td.actions { white-space: nowrap; }
        .state-held { color: #7a4100; font-weight: 700; }
        .notice { border: 1px solid #1b5e20; background: #edf7ee; padding: .5rem 1rem; }
        .problem { border: 1px solid #a4161a; background: #fdeeee; padding: .5rem 1rem; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
        dt { font-weight: 600; }
        dd { margin: 0; overflow-wrap: anywhere; }
        .controls { margin: .5rem 0; color: #3d4651; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
        label { font-weight: 600; }
        input[type=password] { font: inherit; padding: .3rem; border: 1px solid #3d4651; border-radius: 4px; }
        """;

    // Re-reads the page and swaps its live part in place; focus stays on the same control (by id),
    // and nothing happens while the page is hidden or the operator switched the refresh off. A page
    // whose subject can leave (a message, once delivered) says so in data-gone: a refresh that finds
    // it gone (404) shows that text and stops, since no later refresh can bring it back.
    public const string Script = """
        "use strict";
        (() => {
          const seconds = Number(document.body.dataset.refresh || "0");
          const toggle = document.getElementById("auto-refresh");
          const status = document.getElementById("refresh-status");
          if (!seconds || !toggle || !document.getElementById("live")) { return; }
          toggle.disabled = false;
          async function refresh() {
            if (!toggle.checked || document.hidden) { return; }
            try {
              const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } });
              if (response.status === 404 && document.body.dataset.gone) {
                clearInterval(timer);
                toggle.checked = false;
                toggle.disabled = true;
                status.textContent = document.body.dataset.gone;
                return;
              }
              if (!response.ok) { status.textContent = "Could not refresh: HTTP " + response.status + "."; return; }
              const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("live");
              const live = document.getElementById("live");
              if (!fresh || !live) { return; }
              const focused = live.contains(document.activeElement) ? document.activeElement.id : "";
              live.replaceWith(document.importNode(fresh, true));
              if (focused) { document.getElementById(focused)?.focus(); }
              if (status.textContent) { status.textContent = ""; }
            } catch (e) {
              status.textContent = "Could not refresh: the relay did not answer.";
            }
          }
          const timer = setInterval(refresh, seconds * 1000);
        })();
        """;
}
