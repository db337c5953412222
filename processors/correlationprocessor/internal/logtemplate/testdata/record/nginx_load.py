# Load for the NGINX recording (record.sh): a mix of API calls, static files,
# missing files, a dead upstream, a denied path and bursts that the rate
# limit sheds; client addresses vary through X-Forwarded-For (real_ip).
import http.client, random, time
random.seed(7)
uas = ["curl/7.88.1", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
       "python-requests/2.31.0", "Go-http-client/1.1", "kube-probe/1.30"]
refs = ["-", "https://shop.test/", "https://shop.test/cart", "https://www.example.com/search?q=shoes"]
def ip(): return "10.%d.%d.%d" % (random.randint(0,3), random.randint(0,255), random.randint(1,254))
def req(method, path, body=None, pause=True):
    c = http.client.HTTPConnection("127.0.0.1", 18080, timeout=5)
    h = {"X-Forwarded-For": ip(), "User-Agent": random.choice(uas), "Host": "shop.test"}
    r = random.choice(refs)
    if r != "-": h["Referer"] = r
    if body is not None: h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=body, headers=h); c.getresponse().read()
    except Exception as e: pass
    c.close()
    if pause: time.sleep(0.004)
for i in range(1500):
    x = random.random()
    if x < 0.35: req("GET", "/api/products/%d" % random.randint(1, 99999))
    elif x < 0.45: req("POST", "/api/orders", '{"customer":%d}' % random.randint(1,999))
    elif x < 0.50: req("GET", "/api/fail?order=%d" % random.randint(1,9999))
    elif x < 0.58: req("GET", "/static/ok.txt")
    elif x < 0.66: req("GET", "/static/img/p%d.png" % random.randint(1,500))
    elif x < 0.70: req("GET", "/legacy/report/%d" % random.randint(1,50))
    elif x < 0.73: req("GET", "/admin")
    elif x < 0.77: req("GET", "/")
    elif x < 0.80: req("DELETE", "/api/cart/%d/items/%d" % (random.randint(1,999), random.randint(1,20)))
    elif x < 0.83: req("GET", "/.env")
    elif x < 0.86: req("GET", "/wp-login.php")
    else:
        for _ in range(random.randint(20, 60)): req("GET", "/api/search?q=%s" % random.choice(["shoe","hat","red%20coat","socks"]), pause=False)
