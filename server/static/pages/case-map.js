// The case page's map: the case, its duplicate radius and the open cases near it (data from #map-data).
(function () {
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var map = L.map("map", {attributionControl: true}).setView([data.lat, data.lon], 17);
  if (data.tiles) {
    L.tileLayer(data.tiles, {maxZoom: 19, attribution: data.attribution}).addTo(map);
  }
  if (data.radius > 0) {
    L.circle([data.lat, data.lon], {radius: data.radius, color: "#b45309", weight: 1, fillOpacity: 0.08}).addTo(map);
  }
  L.marker([data.lat, data.lon]).addTo(map);
  data.nearby.forEach(function (other) {
    L.circleMarker([other.lat, other.lon], {radius: 7, color: "#1d4ed8", weight: 2, fillOpacity: 0.6})
      .bindTooltip(other.label).on("click", function () { window.location = other.href; }).addTo(map);
  });
  L.control.scale({imperial: false}).addTo(map);
  document.getElementById("map").dataset.ready = "1";
})();
