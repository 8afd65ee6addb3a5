// Export page: follows the build and reveals the download button when the bundle is ready.
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
  try {
    const carried = window.sessionStorage.getItem(carryKey);
    if (carried) {
      window.sessionStorage.removeItem(carryKey);
      setTimeout(() => say(carried), 500);
    }
  } catch (err) { /* no session storage: nothing to say again */ }
  let statusSaid = root.querySelector("[data-export-status]").className.replace("badge", "").trim();
  const announce = (status) => {
    if (status === statusSaid) return;
    statusSaid = status;
    if (status === "building") say(gettext("Packing the bundle."));
    if (status === "ready") {
      say(gettext("The bundle is ready to download."));
      try { window.sessionStorage.setItem(carryKey, live.textContent); } catch (err) { /* none */ }
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
        if (!again && data.status === "ready") window.location.reload();
      }
    } catch (err) { /* try again */ }
    if (again) setTimeout(poll, 1000);
  };
  if (!root.querySelector("[data-export-building]").hidden) setTimeout(poll, 700);
})();
