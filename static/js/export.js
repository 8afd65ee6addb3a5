// Export page: follows the build, and when the bundle turns ready while the page is open,
// starts its download once (the button stays for another try).
(() => {
  const root = document.querySelector("[data-export-status-url]");
  if (!root) return;
  const show = (sel, on) => { const el = root.querySelector(sel); if (el) el.hidden = !on; };
  // Screen readers hear when packing starts and when the bundle is ready; the page reloads
  // then, so the words are said again after it. (A failure shows in the alert box.)
  const live = document.createElement("p");
  live.className = "sr-only";
  live.setAttribute("aria-live", "polite");
  live.setAttribute("aria-atomic", "true");
  live.dataset.exportLive = "";
  root.append(live);
  const say = (text) => { live.textContent = text; };
  const carryKey = `heygem:announce:${window.location.pathname}`;
  // Set just before the reload that follows "ready": the reloaded page starts the download
  // and removes it, so a later reload (or another visit) does not download again.
  const downloadKey = `heygem:autodownload:${window.location.pathname}`;
  const storage = (() => {
    try { return window.sessionStorage; } catch (err) { return null; }
  })();
  const take = (key) => {
    if (!storage) return null;
    try {
      const value = storage.getItem(key);
      if (value !== null) storage.removeItem(key);
      return value;
    } catch (err) { return null; }
  };
  const keep = (key, value) => {
    if (!storage) return;
    try { storage.setItem(key, value); } catch (err) { /* nothing carried */ }
  };
  const link = root.querySelector("[data-export-ready] [data-download]");
  const ready = !root.querySelector("[data-export-ready]").hidden;
  const carried = take(carryKey);
  if (carried) setTimeout(() => say(carried), 500);
  if (take(downloadKey) && ready && link) {
    // Navigating to an attachment starts a download and leaves this page where it is.
    window.location.assign(link.href);
    // A visible notice that is its own status region: said after "ready".
    const started = root.querySelector("[data-export-started]");
    if (started) {
      started.hidden = false;
      setTimeout(() => { started.textContent = started.dataset.exportStarted; }, 900);
    }
  }
  let statusSaid = root.querySelector("[data-export-status]").className.replace("badge", "").trim();
  const announce = (status) => {
    if (status === statusSaid) return;
    statusSaid = status;
    if (status === "building") say(gettext("Packing the bundle."));
    if (status === "ready") {
      say(gettext("The bundle is ready to download."));
      keep(carryKey, live.textContent);
    }
  };
  const apply = (data) => {
    const badge = root.querySelector("[data-export-status]");
    // The label comes translated from the server (status_label), like the page's own.
    badge.textContent = data.status_label || data.status; badge.className = `badge ${data.status}`;
    const active = data.status === "queued" || data.status === "building";
    show("[data-export-building]", active);
    show("[data-export-slow]", data.slow);
    show("[data-export-ready]", data.status === "ready");
    show("[data-export-error]", data.status === "failed");
    root.querySelector("[data-export-error]").textContent = data.error || "";
    announce(data.status);
    return active;
  };
  const poll = async () => {
    let again = true;
    try {
      const r = await fetch(root.dataset.exportStatusUrl, { cache: "no-store" });
      if (r.ok) {
        const data = await r.json();
        again = apply(data);
        if (!again && data.status === "ready") {
          if (link) keep(downloadKey, "1");
          window.location.reload();
        }
      }
    } catch (err) { /* try again */ }
    if (again) setTimeout(poll, 1000);
  };
  if (!root.querySelector("[data-export-building]").hidden) setTimeout(poll, 700);
})();
