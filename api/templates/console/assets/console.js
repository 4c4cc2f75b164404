// Confirmation for destructive forms (<form data-confirm="...">, or a submit button of
// its own: <button data-confirm="...">). No inline scripts: the console's
// Content-Security-Policy forbids them.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = event.submitter;
  const question =
    (button instanceof HTMLElement ? button.dataset.confirm : undefined) ||
    (form instanceof HTMLFormElement ? form.dataset.confirm : undefined);
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// A table marked data-refresh="N" (deliveries in flight, a re-send just asked for) is
// fetched again every N seconds and swapped in place, with the elements named in
// data-refresh-also, until the fresh page no longer marks it.
const refreshing = document.querySelector("table[data-refresh]");
if (refreshing) {
  const seconds = Number(refreshing.dataset.refresh) || 3;
  const ids = [refreshing.id, ...(refreshing.dataset.refreshAlso || "").split(" ").filter(Boolean)];
  const timer = window.setInterval(async () => {
    let page;
    try {
      const response = await fetch(window.location.href, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok || response.redirected) return;
      page = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch {
      return; // the API restarted: try again next time
    }
    for (const id of ids) {
      const current = document.getElementById(id);
      const fresh = page.getElementById(id);
      if (current && fresh) current.replaceWith(document.importNode(fresh, true));
      else if (current) current.remove();
    }
    const table = page.getElementById(refreshing.id);
    if (!table || !table.hasAttribute("data-refresh")) window.clearInterval(timer);
  }, seconds * 1000);
}
