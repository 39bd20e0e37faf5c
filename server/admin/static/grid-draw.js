// The grid page's map: the other grids' outlines, the district's, and the grid's own boundary, which an admin may
// draw by clicking its corners. Finishing writes a GeoJSON Polygon into the form's boundary field; the server checks
// it as it checks an uploaded file (closed, simple, inside the district). Data from #grid-map-data.
(function () {
  var data = JSON.parse(document.getElementById("grid-map-data").textContent);
  var element = document.getElementById("grid-map");
  var field = document.querySelector("textarea[name=boundary]");
  var start = document.getElementById("draw-start");
  var finish = document.getElementById("draw-finish");
  var clear = document.getElementById("draw-clear");
  var hint = document.getElementById("draw-hint");
  var map = L.map(element, {attributionControl: true, doubleClickZoom: false});
  if (data.tiles) {
    L.tileLayer(data.tiles, {maxZoom: 19, attribution: data.attribution}).addTo(map);
  }

  // GeoJSON rings are [lon, lat]; Leaflet wants [lat, lon].
  function latLngs(polygon) {
    return polygon.coordinates.map(function (ring) {
      return ring.map(function (point) { return [point[1], point[0]]; });
    });
  }

  var bounds = L.latLngBounds([]);
  data.others.forEach(function (grid) {
    var shape = L.polygon(latLngs(grid.boundary), {color: "#64748b", weight: 1, fillOpacity: 0.05})
      .bindTooltip(grid.code + " " + grid.name).addTo(map);
    bounds.extend(shape.getBounds());
  });
  if (data.district) {
    var district = L.polygon(latLngs(data.district), {color: "#0f172a", weight: 2, dashArray: "6 4", fill: false})
      .addTo(map);
    bounds.extend(district.getBounds());
  }

  var own = null;
  function showOwn() {
    if (own) { map.removeLayer(own); own = null; }
    var polygon = null;
    try { polygon = field.value.trim() ? JSON.parse(field.value) : null; } catch (e) { polygon = null; }
    if (polygon && polygon.type === "Feature") { polygon = polygon.geometry; }
    if (polygon && polygon.type === "Polygon" && Array.isArray(polygon.coordinates)) {
      own = L.polygon(latLngs(polygon), {color: "#b45309", weight: 3, fillOpacity: 0.15}).addTo(map);
      return own.getBounds();
    }
    return null;
  }
  var ownBounds = showOwn();
  if (ownBounds) {
    map.fitBounds(ownBounds, {padding: [30, 30], maxZoom: 18});
  } else if (bounds.isValid()) {
    map.fitBounds(bounds, {padding: [30, 30], maxZoom: 17});
  } else {
    map.setView([data.lat, data.lon], data.lat || data.lon ? 15 : 2);
  }
  L.control.scale({imperial: false}).addTo(map);

  // Drawing: each click adds a corner; Finish closes the ring (at least three corners).
  var corners = [];
  var sketch = null;
  var drawing = false;
  function redrawSketch() {
    if (sketch) { map.removeLayer(sketch); }
    sketch = corners.length ? L.polyline(corners, {color: "#b45309", weight: 2, dashArray: "4 4"}).addTo(map) : null;
    finish.disabled = corners.length < 3;
    element.dataset.corners = String(corners.length);
  }
  function setDrawing(on) {
    drawing = on;
    element.classList.toggle("drawing", on);
    hint.textContent = on ? hint.dataset.drawing : hint.dataset.idle;
    start.disabled = on;
  }
  map.on("click", function (event) {
    if (!drawing) { return; }
    corners.push([event.latlng.lat, event.latlng.lng]);
    redrawSketch();
  });
  function round(value) { return Math.round(value * 1e6) / 1e6; }
  start.addEventListener("click", function () {
    corners = [];
    redrawSketch();
    setDrawing(true);
  });
  finish.addEventListener("click", function () {
    if (corners.length < 3) { return; }
    var ring = corners.map(function (c) { return [round(c[1]), round(c[0])]; });
    ring.push(ring[0].slice());
    field.value = JSON.stringify({type: "Polygon", coordinates: [ring]});
    corners = [];
    redrawSketch();
    setDrawing(false);
    showOwn();
  });
  clear.addEventListener("click", function () {
    corners = [];
    redrawSketch();
    setDrawing(false);
    field.value = "";
    showOwn();
  });
  field.addEventListener("change", showOwn);
  element.dataset.ready = "1";
})();
