// Confirmation for destructive forms (<form data-confirm="...">). No inline scripts: the
// console's Content-Security-Policy forbids them.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
