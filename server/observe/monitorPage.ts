// The live monitor page: one self-contained HTML document (no build step, no external
// assets, so it works on a server with no internet) that polls the JSON view once a second.
// Made to be left open on a second screen: big numbers on top, a calls/s sparkline, the
// per-method tables for both directions, errors by code and the latest errors.
// The page holds no numbers, so it is served to anyone; the JSON needs the routes token,
// which the page takes from its URL's fragment (`/monitor#token=…`: a fragment is never
// sent to a server, so it stays out of access logs), keeps for the tab in sessionStorage,
// removes from the address bar and sends as `Authorization: Bearer`.

export function monitorPage(jsonPath: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Volley monitor</title>
<link rel="icon" href="data:,">
<style>
:root{--bg:#0f1419;--panel:#171d24;--line:#26303b;--text:#e6edf3;--dim:#8b98a5;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--accent:#58a6ff}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--text);font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
header{display:flex;align-items:center;gap:12px;padding:14px 22px;border-bottom:1px solid var(--line)}
header h1{font-size:17px;margin:0;font-weight:600}#dot{width:10px;height:10px;border-radius:50%;background:var(--dim)}
#dot.live{background:var(--ok);box-shadow:0 0 8px var(--ok)}#status{color:var(--dim);margin-left:auto;font-variant-numeric:tabular-nums}
main{padding:18px 22px;display:grid;gap:18px}
.cards{display:grid;grid-template-columns:repeat(6,minmax(120px,1fr));gap:12px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .v{font-size:30px;font-weight:650;font-variant-numeric:tabular-nums}.card .l{color:var(--dim);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.row{display:grid;grid-template-columns:1fr 1fr;gap:18px;align-items:start}
section{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}
section h2{font-size:13px;margin:0 0 8px;color:var(--dim);text-transform:uppercase;letter-spacing:.04em;font-weight:600}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:5px 6px;text-align:right;border-bottom:1px solid var(--line);white-space:nowrap}
th{color:var(--dim);font-weight:500;font-size:12px}th:first-child,td:first-child{text-align:left}td:first-child{font-family:ui-monospace,Menlo,monospace;overflow:hidden;text-overflow:ellipsis;max-width:220px}
td.bad{color:var(--bad)}.empty{color:var(--dim);padding:8px 0}
canvas{width:100%;height:70px;display:block}
.chips{display:flex;flex-wrap:wrap;gap:8px}.chip{border:1px solid var(--line);border-radius:14px;padding:3px 10px;font-variant-numeric:tabular-nums}.chip b{color:var(--bad);font-weight:600}
ol{margin:0;padding:0;list-style:none;font-family:ui-monospace,Menlo,monospace;font-size:12.5px}ol li{padding:3px 0;border-bottom:1px solid var(--line);display:flex;gap:10px}ol li .t{color:var(--dim)}ol li .c{color:var(--bad)}ol li .u{color:var(--accent)}
</style></head>
<body>
<header><div id="dot"></div><h1>Volley monitor</h1><span id="status">connecting…</span></header>
<main>
<div class="cards">
 <div class="card"><div class="v" data-k="online">–</div><div class="l">players online</div></div>
 <div class="card"><div class="v" data-k="parked">–</div><div class="l">parked sessions</div></div>
 <div class="card"><div class="v" data-k="rooms">–</div><div class="l">rooms</div></div>
 <div class="card"><div class="v" data-k="members">–</div><div class="l">room members</div></div>
 <div class="card"><div class="v" data-k="callsIn">–</div><div class="l">calls/s served</div></div>
 <div class="card"><div class="v" data-k="callsOut">–</div><div class="l">calls/s to players</div></div>
</div>
<section><h2>Calls per second, last 2 minutes <span style="color:var(--accent)">■ served</span> <span style="color:var(--warn)">■ to players</span></h2><canvas id="spark" height="70"></canvas></section>
<div class="row">
 <section><h2>Served (players → server)</h2><div id="served"></div></section>
 <section><h2>Made (server → players)</h2><div id="made"></div></section>
</div>
<div class="row">
 <section><h2>Errors by code (last 10 s / since start)</h2><div id="codes" class="chips"></div></section>
 <section><h2>Latest errors (→ served · ← made)</h2><ol id="recent"></ol></section>
</div>
</main>
<script>
const PATH=${JSON.stringify(jsonPath)};
const KEY="volley-monitor-token";
const given=/(?:^#|&)token=([^&]*)/.exec(location.hash);
if(given){sessionStorage.setItem(KEY,decodeURIComponent(given[1]));history.replaceState(null,"",location.pathname+location.search)}
const TOKEN=sessionStorage.getItem(KEY);
const hist=[];let last=0;
const $=(s)=>document.querySelector(s);
const esc=(s)=>String(s).replace(/[&<>"]/g,(c)=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const num=(n)=>n>=1e6?(n/1e6).toFixed(1)+"M":n>=1e4?(n/1e3).toFixed(1)+"k":n>=100?Math.round(n).toString():n>=10?n.toFixed(1):n.toFixed(n===0?0:2);
const dur=(s)=>s==null?"–":s<1e-3?(s*1e6).toFixed(0)+" µs":s<1?(s*1e3).toFixed(s<0.01?2:1)+" ms":s.toFixed(2)+" s";
function table(rows,dir){
 if(!rows.length)return '<div class="empty">no calls yet</div>';
 return '<table data-dir="'+dir+'"><tr><th>method</th><th>calls/s</th><th>p50</th><th>p99</th><th>total</th><th>errors</th></tr>'+rows.map((r)=>
  '<tr data-method="'+esc(r.method)+'"><td>'+esc(r.method)+'</td><td data-c="rate">'+num(r.rate)+'</td><td data-c="p50">'+dur(r.p50)+'</td><td data-c="p99">'+dur(r.p99)+'</td><td data-c="total">'+r.total+'</td><td data-c="errors" class="'+(r.errors?"bad":"")+'">'+r.errors+'</td></tr>').join("")+'</table>';
}
function spark(){
 const c=$("#spark"),w=c.clientWidth,h=70,d=devicePixelRatio||1;c.width=w*d;c.height=h*d;const g=c.getContext("2d");g.scale(d,d);
 const max=Math.max(1,...hist.map((p)=>Math.max(p[0],p[1])));
 g.strokeStyle="#26303b";g.beginPath();g.moveTo(0,h-.5);g.lineTo(w,h-.5);g.stroke();
 g.fillStyle="#8b98a5";g.font="11px system-ui";g.fillText(num(max)+"/s",4,11);
 [[0,"#58a6ff"],[1,"#d29922"]].forEach(([k,col])=>{g.strokeStyle=col;g.lineWidth=1.6;g.beginPath();
  hist.forEach((p,i)=>{const x=w-(hist.length-1-i)*(w/Math.max(59,hist.length-1)),y=h-2-(p[k]/max)*(h-16);i?g.lineTo(x,y):g.moveTo(x,y)});g.stroke()});
}
function render(v){
 const sum=(rows)=>rows.reduce((a,r)=>a+r.rate,0);
 const set=(k,val)=>{$('[data-k="'+k+'"]').textContent=val};
 set("online",v.online);set("parked",v.parked);set("rooms",v.rooms);set("members",v.members);
 set("callsIn",num(sum(v.served)));set("callsOut",num(sum(v.made)));
 $("#served").innerHTML=table(v.served,"served");$("#made").innerHTML=table(v.made,"made");
 $("#codes").innerHTML=v.errorsByCode.length?v.errorsByCode.map((c)=>'<span class="chip" data-code="'+esc(c.code)+'">'+esc(c.code)+' <b>'+Math.round(c.window)+'</b> / '+c.total+'</span>').join(""):'<span class="empty">none</span>';
 $("#recent").innerHTML=v.recentErrors.length?v.recentErrors.slice(0,12).map((e)=>'<li><span class="t">'+new Date(e.at).toLocaleTimeString()+'</span><span>'+(e.direction==="served"?"→":"←")+' '+esc(e.method)+(e.uid?' <span class="u">'+esc(e.uid)+'</span>':'')+'</span><span class="c">'+esc(e.code)+'</span></li>').join(""):'<li class="empty">none</li>';
 if(v.history&&v.history.length)hist.splice(0,hist.length,...v.history);else{hist.push([sum(v.served),sum(v.made)]);if(hist.length>120)hist.shift()}spark();
 $("#status").textContent="up "+fmtUp(v.uptimeSeconds)+" · "+num(v.messagesInPerSecond)+" msg/s in · "+num(v.messagesOutPerSecond)+" msg/s out · updated "+new Date(v.at).toLocaleTimeString();
}
function fmtUp(s){return s<120?s+" s":s<7200?Math.round(s/60)+" min":(s/3600).toFixed(1)+" h"}
async function poll(){
 try{const r=await fetch(PATH,{cache:"no-store",headers:TOKEN?{authorization:"Bearer "+TOKEN}:{}});
  if(r.status===401){$("#dot").className="";$("#status").textContent="needs the routes token: open this page as "+location.pathname+"#token=<observe.routesToken>";return}
  render(await r.json());$("#dot").className="live";last=Date.now()}
 catch{$("#dot").className="";$("#status").textContent="server unreachable since "+new Date(last||Date.now()).toLocaleTimeString()}
 setTimeout(poll,1000);
}
poll();addEventListener("resize",spark);
</script></body></html>`;
}
