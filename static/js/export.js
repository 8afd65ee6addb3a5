// Export page: follows the build and reveals the download button when the bundle is ready.
(() => {
  const root = document.querySelector("[data-export-status-url]");
  if (!root) return;
  const show = (sel, on) => { const el = root.querySelector(sel); if (el) el.hidden = !on; };
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
