// Live notices: server-sent events from /events shown in the page's live region, no reload.
// The server sends only what the signed-in user may see, already worded in their language.
(function () {
  "use strict";
  var region = document.getElementById("live-notices");
  if (!region || !window.EventSource) {
    return;
  }
  var list = region.querySelector("ul") || region.appendChild(document.createElement("ul"));
  var kept = 5;
  var source = new EventSource(region.getAttribute("data-source") || "/events");
  // For people and tests alike: whether notices can arrive right now.
  source.addEventListener("open", function () {
    region.setAttribute("data-live", "connected");
  });
  source.addEventListener("error", function () {
    region.setAttribute("data-live", "reconnecting");
  });
  source.addEventListener("notice", function (event) {
    var notice;
    try {
      notice = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    var item = document.createElement("li");
    item.className = "live-notice live-" + (notice.tone || "info");
    if (notice.href) {
      var link = document.createElement("a");
      link.href = notice.href;
      link.textContent = notice.text;
      item.appendChild(link);
    } else {
      item.textContent = notice.text;
    }
    if (notice.at) {
      var time = document.createElement("time");
      time.dateTime = notice.at;
      time.textContent = " " + notice.at_text;
      item.appendChild(time);
    }
    list.insertBefore(item, list.firstChild);
    while (list.children.length > kept) {
      list.removeChild(list.lastChild);
    }
    region.hidden = false;
  });
})();
