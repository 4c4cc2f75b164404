// Live view: poll the console's JSON endpoint every 2 s and draw each queue's
// deliveries per second against its limit.
(() => {
  const root = document.getElementById("live");
  const status = document.getElementById("live-status");
  if (!root) return;
  const url = root.dataset.url;

  const fmt = (n) => Number(n.toFixed(n >= 10 ? 1 : 2)).toString();

  function draw(queue) {
    const card = root.querySelector(`.queue[data-kind="${CSS.escape(queue.kind)}"]`);
    if (!card) return;
    const limit = queue.limit_per_second;
    card.querySelector(".current").textContent = fmt(queue.current_per_second);
    card.querySelector(".peak").textContent = fmt(queue.peak_per_second);
    card.querySelector(".average").textContent = fmt(queue.average_per_second);
    card.querySelector(".source").textContent = "from delivery records";
    const fill = card.querySelector(".meter .fill");
    const share = limit > 0 ? queue.current_per_second / limit : 0;
    fill.style.width = `${Math.min(share, 1) * 100}%`;
    fill.classList.toggle("hot", share >= 0.8 && share <= 1);
    fill.classList.toggle("over", queue.peak_per_second > limit);

    const spark = card.querySelector(".spark");
    const limitLine = spark.querySelector(".limit");
    spark.querySelectorAll(".bar").forEach((el) => el.remove());
    const top = Math.max(limit * 1.25, ...queue.per_second, 1);
    limitLine.style.bottom = `${(limit / top) * 100}%`;
    limitLine.dataset.label = `limit ${fmt(limit)}/s`;
    for (const count of queue.per_second) {
      const bar = document.createElement("div");
      bar.className = count > limit ? "bar over" : "bar";
      bar.style.height = `${(count / top) * 100}%`;
      bar.title = `${count}/s`;
      spark.insertBefore(bar, limitLine);
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) {
        window.location.assign("/admin/login");
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      data.queues.forEach(draw);
      status.textContent = `updated ${new Date(data.generated_at).toLocaleTimeString()}`;
      root.dataset.updated = data.generated_at;
    } catch (error) {
      status.textContent = `could not update: ${error.message}`;
    }
  }

  poll();
  setInterval(poll, 2000);
})();
