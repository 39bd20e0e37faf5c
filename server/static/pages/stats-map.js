// The statistics page's map: open cases, each coloured by how long it has been open (data from #stats-map-data).
(function () {
  var data = JSON.parse(document.getElementById("stats-map-data").textContent);
  var element = document.getElementById("stats-map");
  var map = L.map(element, {attributionControl: true});
  if (data.tiles) {
    L.tileLayer(data.tiles, {maxZoom: 19, attribution: data.attribution}).addTo(map);
  }
  var points = [];
  data.cases.forEach(function (item) {
    var band = data.bands[item.band];
    L.circleMarker([item.lat, item.lon], {radius: 6, color: band.colour, weight: 1, fillOpacity: 0.8})
      .bindTooltip(item.label).on("click", function () { window.location = item.href; }).addTo(map);
    points.push([item.lat, item.lon]);
  });
  if (points.length) {
    map.fitBounds(points, {padding: [20, 20], maxZoom: 17});
  } else {
    map.setView([data.lat, data.lon], 13);
  }
  L.control.scale({imperial: false}).addTo(map);
  element.dataset.ready = "1";
})();
