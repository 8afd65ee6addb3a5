// The results' player, on every page that shows finished videos (a batch, a project's results by
// tag), and the library's preview. A card's thumbnail is a button with data-play (the video), data-title (its avatar and
// audio or script), data-download, and data-vtt/data-srt when it has subtitles; clicking one
// opens the page's <dialog data-player> on it. Previous and Next (and the arrow keys) walk the
// page's cards in their order, cards added later included (batch.js says "results:added").
// Words come from the page (the dialog's buttons) and its catalogue (gettext, ngettext,
// interpolate: /jsi18n/<lang>.js).
(() => {
  const player = document.querySelector("dialog[data-player]");
  if (!player) return;
  const video = player.querySelector("video");
  const title = player.querySelector("[data-player-title]");
  const position = player.querySelector("[data-player-position]");
  const previous = player.querySelector('[data-player-step="-1"]');
  const next = player.querySelector('[data-player-step="1"]');
  const download = player.querySelector("[data-player-download]");
  const srt = player.querySelector("[data-player-srt]");
  let current = null; // the card button whose video is shown

  const cards = () => [...document.querySelectorAll("[data-play]")];
  // The card shown, found again when its list was replaced meanwhile (the library's list is
  // fetched again after uploads).
  const located = () => {
    if (!current || current.isConnected) return current;
    current = cards().find((b) => b.dataset.play === current.dataset.play) || current;
    return current;
  };

  // "Video 3 of 12" ("File 3 of 12" in the library, where audio tracks play too), and
  // Previous/Next usable only where there is one to go to.
  const files = player.dataset.counting === "files";
  const place = () => {
    const all = cards();
    const index = all.indexOf(located());
    position.textContent = interpolate(files
      ? ngettext("File %(index)s of %(total)s", "File %(index)s of %(total)s", all.length)
      : ngettext("Video %(index)s of %(total)s", "Video %(index)s of %(total)s", all.length),
    { index: index + 1, total: all.length }, true);
    const focused = document.activeElement;
    previous.disabled = index <= 0;
    next.disabled = index < 0 || index >= all.length - 1;
    // A button that goes disabled drops the focus out of the dialog: keep it inside.
    if (focused && focused.disabled) title.focus();
  };

  const show = (button) => {
    current = button;
    video.querySelectorAll("track").forEach((t) => t.remove());
    if (button.dataset.vtt) {
      const track = document.createElement("track");
      track.kind = "subtitles"; track.src = button.dataset.vtt; track.default = true;
      track.label = gettext("Subtitles");
      video.append(track);
    }
    video.src = button.dataset.play;
    title.textContent = button.dataset.title || button.getAttribute("aria-label");
    download.href = button.dataset.download;
    srt.hidden = !button.dataset.srt;
    if (button.dataset.srt) srt.href = button.dataset.srt; else srt.removeAttribute("href");
    place();
    video.play().catch(() => {}); // no autoplay allowed: the controls are there
  };

  const go = (step) => {
    const all = cards();
    const target = all[all.indexOf(located()) + step];
    if (target) show(target);
  };

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-play]");
    if (!button) return;
    show(button); // before it opens: its live region speaks on Previous/Next only
    if (!player.open) player.showModal();
    title.focus(); // the arrow keys then step, rather than seek in the video
  });
  previous.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  document.addEventListener("keydown", (event) => {
    if (!player.open || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.target === video) return; // its own controls seek with the arrows
    const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (!step) return;
    event.preventDefault();
    go(step);
  });
  // batch.js adds the cards of videos finished while the page is open.
  document.addEventListener("results:added", () => { if (player.open) place(); });
  // Escape or Close: stop and unload the video, and come back to the card last shown.
  player.addEventListener("close", () => {
    video.pause(); video.removeAttribute("src"); video.load();
    if (current && current.isConnected) current.focus();
    current = null;
  });
})();
