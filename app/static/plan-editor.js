// Live margin in the plan editor: posts the form to the preview endpoint as the
// staff member types and shows the margin the current terms would have.
(function () {
  "use strict";
  var form = document.getElementById("plan-form");
  var box = document.getElementById("margin");
  var live = document.getElementById("margin-live");
  if (!form || !box || !live) { return; }
  var url = box.getAttribute("data-preview-url");
  var timer = null;
  function refresh() {
    var data = new FormData(form);
    fetch(url, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        live.textContent = body.ok ? (live.dataset.label || "") + body.margin : body.message;
        live.classList.toggle("bad", !body.ok || body.negative);
        live.setAttribute("data-margin", body.ok ? String(body.margin_minor) : "");
      })
      .catch(function () { live.textContent = ""; });
  }
  form.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 300);
  });
}());
