// Live batch page: polls status.json and updates the bars, statuses and result grid in place.
// Words come from the page's catalogue (gettext, ngettext, interpolate: /jsi18n/<lang>.js) or,
// for statuses, from the server (status_label); codes stay in classes and data attributes.
(() => {
  const root = document.querySelector("[data-status-url]");
  if (!root) return;
  const url = root.dataset.statusUrl;
  const finishedAtLoad = root.querySelector("[data-batch-finished]").textContent.trim();
  const totalAtLoad = Number(root.dataset.batchTotal);

  const setBar = (bar, percent) => {
    bar.setAttribute("aria-valuenow", String(percent));
    bar.querySelector("span").style.width = `${percent}%`;
  };

  const addResult = (output) => {
    const grid = root.querySelector("[data-results]");
    if (grid.querySelector(`[data-output="${output.id}"]`)) return;
    const fig = document.createElement("figure");
    fig.className = "result";
    fig.dataset.output = output.id;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "thumb";
    button.dataset.play = output.play;
    button.setAttribute("aria-label", interpolate(gettext("Play %(name)s"), { name: output.name }, true));
    const img = document.createElement("img");
    img.src = output.thumbnail; img.alt = ""; img.width = 320;
    button.append(img);
    const caption = document.createElement("figcaption");
    caption.append(output.name, document.createElement("br"));
    const small = document.createElement("small");
    const seconds = interpolate(gettext("%(seconds)s s"), { seconds: output.duration.toFixed(1) }, true);
    small.textContent = `${seconds} · ${output.size}`;
    const link = document.createElement("a");
    link.href = output.download; link.textContent = gettext("Download"); link.setAttribute("download", "");
    caption.append(small, " ", link);
    fig.append(button, caption);
    grid.append(fig);
    root.querySelector("[data-results-empty]").hidden = true;
  };

  const apply = (data) => {
    setBar(root.querySelector("[data-batch-progress]"), data.percent);
    const badge = root.querySelector("[data-batch-status]");
    badge.textContent = data.status_label; badge.className = `badge ${data.status}`;
    root.querySelector("[data-batch-finished]").textContent = data.finished;
    for (const job of data.jobs) {
      const row = root.querySelector(`[data-job="${job.id}"]`);
      if (!row) continue;
      setBar(row.querySelector(".progress"), job.percent);
      const status = row.querySelector("[data-status]");
      status.textContent = job.status_label; status.className = `badge ${job.status}`;
      row.querySelector("[data-error]").textContent = job.error;
      row.querySelector("[data-frames]").textContent = job.frames_total
        ? interpolate(
          ngettext("%(done)s / %(total)s frame", "%(done)s / %(total)s frames", job.frames_total),
          { done: job.frames_done, total: job.frames_total }, true)
        : "";
      row.querySelectorAll("[data-show-when]").forEach((el) => {
        el.hidden = !el.dataset.showWhen.split(" ").includes(job.status);
      });
      if (job.output) addResult(job.output);
    }
    if (data.finished === data.total) {
      root.querySelectorAll("[data-cancel-batch]").forEach((el) => el.closest("form").remove());
      // Jobs that failed or were canceled while we watched get their Retry buttons.
      const unfinishedAtLoad = Number(finishedAtLoad) < totalAtLoad;
      if (unfinishedAtLoad && (data.counts.failed || data.counts.canceled)) window.location.reload();
    }
    return data.finished < data.total;
  };

  const poll = async () => {
    let again = true;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) again = apply(await response.json());
    } catch (err) {
      // Network hiccup: try again on the next tick.
    }
    if (again) setTimeout(poll, 1500);
  };
  setTimeout(poll, 800);

  const player = root.querySelector("[data-player]");
  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-play]");
    if (!button) return;
    const video = player.querySelector("video");
    video.src = button.dataset.play;
    player.showModal();
    video.play().catch(() => {});
  });
  player.addEventListener("close", () => { const v = player.querySelector("video"); v.pause(); v.removeAttribute("src"); v.load(); });
})();
