// Header badge: keeps the unread count current without a reload. Asks the server every
// data-poll-ms milliseconds, only while the tab is visible (at once when it comes back),
// and tells screen readers about new messages through the polite live region.
(() => {
  const bell = document.querySelector("[data-unread-url]");
  if (!bell || !window.fetch) return;
  const badge = bell.querySelector("[data-unread-count]");
  const number = bell.querySelector("[data-unread-number]");
  const live = document.querySelector("[data-unread-live]");
  const every = Math.max(250, Number(bell.dataset.pollMs) || 15000);
  let shown = Number(number.textContent) || 0;
  let timer = 0;
  let inflight = false;
  let stopped = false;

  const visible = () => document.visibilityState === "visible";

  // gettext, ngettext and interpolate: the page's catalogue (/jsi18n/<language>.js, base.html).
  const announce = (fresh, latest) => {
    if (!live) return;
    if (fresh === 1 && latest && latest.message) {
      const one = gettext("1 new notification: %(message)s");
      live.textContent = interpolate(one, { message: latest.message }, true);
    } else {
      const many = ngettext("%(count)s new notification", "%(count)s new notifications", fresh);
      live.textContent = interpolate(many, { count: fresh }, true);
    }
  };

  // The phone's menu button repeats the count, since the bell is inside the closed menu.
  const mirror = document.querySelector("[data-unread-mirror]");

  const apply = (data) => {
    const unread = Math.max(0, Number(data.unread) || 0);
    number.textContent = String(unread);
    badge.hidden = unread === 0;
    if (mirror) {
      mirror.querySelector("[data-unread-mirror-number]").textContent = String(unread);
      mirror.hidden = unread === 0;
    }
    if (unread > shown) announce(unread - shown, (data.latest || [])[0]);
    shown = unread;
  };

  const cancel = () => {
    clearTimeout(timer);
    timer = 0;
  };
  const schedule = (delay) => {
    cancel();
    if (!stopped && visible()) timer = setTimeout(poll, delay);
  };

  async function poll() {
    timer = 0;
    if (inflight || stopped || !visible()) return;
    inflight = true;
    try {
      const response = await fetch(bell.dataset.unreadUrl, {
        cache: "no-store",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const json = (response.headers.get("Content-Type") || "").includes("json");
      if (response.ok && json) apply(await response.json());
      // Logged out, or no longer a member here: asking again will not help.
      else if (response.status === 401 || response.status === 403 || response.status === 404) {
        stopped = true;
      }
    } catch (err) {
      /* offline or the server restarts: try again next time */
    } finally {
      inflight = false;
    }
    schedule(every);
  }

  document.addEventListener("visibilitychange", () => {
    if (visible()) schedule(0);
    else cancel();
  });
  schedule(every);
})();
