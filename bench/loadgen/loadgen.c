/* memcloud's load generator: the same C client drives memcached and memcloud, so their
 * ratio is fair. One thread, epoll, N connections, each sending `depth` requests at a time
 * (1 = unpipelined) and waiting for all replies; fixed duration; latency per batch.
 *
 *   loadgen HOST PORT[,PORT...] [options]
 *     -c CONNS     connections (50)         -d SECONDS  duration (5)
 *     -n REQUESTS  a bounded run: each connection stops after this many requests (a multiple
 *                  of DEPTH), or at the duration if that comes first (0: the duration only)
 *     -p DEPTH     pipeline depth (1)       -r GETS     gets per set (10)
 *     -m KEYS      keys per multi-get (1)   -k KEYS     keyspace (10000)
 *     -v BYTES     value size (100)         -b          binary protocol
 *     -M           meta protocol: gets are `mg <key> v`, sets `ms <key> <bytes>` (text)
 *     -u USER -P PASS  authenticate (text: set login; binary: SASL PLAIN)
 *     -i IDLE      extra idle (authenticated) connections held open (0)
 *     -o           only preload the keyspace, then print {"preloaded": N, "seconds": S}
 *     -R           print a line `ready` (flushed) when the timed phase begins
 *     -s           TLS on every connection (OpenSSL, TLS 1.2+; the handshake happens before
 *                  the timed phase; the server's certificate is not checked: loopback only)
 * Prints one JSON object: ops (requests), seconds, ops_per_sec, p50_us, p99_us (latency of a
 * batch of `depth` requests), errors, gets, sets, keys (keys asked for by gets), hits.
 * Connection i's k-th request (k from 0) is a set when (i + k) % (GETS + 1) == 0, else a get.
 *
 * Several ports (a server's nodes): connections go round-robin over them and key n lives on
 * port n % NPORTS, as a client hashing keys over the nodes would place it; each connection asks
 * only for the keys of its own port, and the preload stores every key on its port.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define BUF_SIZE (1 << 20)
#define MAX_SAMPLES (1 << 22)

typedef struct {
  int fd;
  char *out;
  size_t out_len, out_off;
  char *in;
  size_t in_len;
  int expected;  /* replies still due in this batch */
  int is_get[256];
  int head;      /* index of the reply being parsed */
  double started;
  uint64_t counter;
  int port_index;
  uint64_t done;  /* requests answered on this connection in the timed phase */
  uint64_t batch_gets, batch_sets, batch_keys, batch_hits;
} conn_t;

static const char *host, *user, *pass;
#define MAX_PORTS 64
static int ports[MAX_PORTS], nports;
static int preload_only, ready_line;
static uint64_t gets, sets, keys_asked, hits;
static int conns = 50, duration = 5, depth = 1, ratio = 10, mget = 1, requests = 0;
static int keyspace = 10000, value_size = 100, binary, meta, idle;
static char *value;
static double *samples;
static size_t n_samples;
static uint64_t ops, errors;

/* With -s, every descriptor's TLS session, by descriptor (NULL: plain). */
#define MAX_FDS (1 << 16)
static SSL_CTX *tls_ctx;
static SSL *tls_of[MAX_FDS];

static void tls_fail(const char *what) {
  fprintf(stderr, "%s: ", what);
  ERR_print_errors_fp(stderr);
  fprintf(stderr, "\n");
  exit(2);
}

static void tls_setup(void) {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION)) tls_fail("TLS context");
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
  /* A write retried after SSL_ERROR_WANT_WRITE may come from a moved buffer. */
  SSL_CTX_set_mode(tls_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/* Read like read(2); a TLS record not yet complete is EAGAIN. */
static ssize_t io_read(int fd, char *buf, size_t len) {
  SSL *ssl = tls_of[fd];
  if (!ssl) return read(fd, buf, len);
  int n = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0) return n;
  int err = SSL_get_error(ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) { errno = EAGAIN; return -1; }
  if (err == SSL_ERROR_ZERO_RETURN) return 0;
  errno = EIO;
  return -1;
}

/* Whether decrypted bytes wait inside OpenSSL (epoll cannot see them). */
static int io_pending(int fd) { return tls_of[fd] != NULL && SSL_pending(tls_of[fd]) > 0; }

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int dial(int port_index) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[port_index])};
  inet_pton(AF_INET, host, &addr.sin_addr);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("connect");
    exit(2);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (tls_ctx) {
    if (fd >= MAX_FDS) { fprintf(stderr, "too many descriptors for TLS\n"); exit(2); }
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1) tls_fail("TLS handshake");
    tls_of[fd] = ssl;
  }
  return fd;
}

static void send_all(int fd, const char *data, size_t len) {
  SSL *ssl = tls_of[fd];
  while (len) {
    ssize_t n;
    if (ssl) {
      int done = SSL_write(ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
      if (done <= 0) {
        int err = SSL_get_error(ssl, done);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) continue;
        tls_fail("TLS write");
      }
      n = done;
    } else {
      n = write(fd, data, len);
    }
    if (n <= 0) { perror("write"); exit(2); }
    data += n; len -= n;
  }
}

static size_t bin_header(char *p, uint8_t op, uint16_t klen, uint8_t elen, uint32_t blen) {
  memset(p, 0, 24);
  p[0] = (char)0x80; p[1] = (char)op;
  p[2] = (char)(klen >> 8); p[3] = (char)klen; p[4] = (char)elen;
  p[8] = (char)(blen >> 24); p[9] = (char)(blen >> 16); p[10] = (char)(blen >> 8); p[11] = (char)blen;
  return 24;
}

/* Blocking login on a fresh connection; exits on failure. */
static void login(int fd) {
  char buf[1024];
  size_t len;
  if (binary) {
    size_t plen = 1 + strlen(user) + 1 + strlen(pass);
    len = bin_header(buf, 0x21, 5, 0, (uint32_t)(5 + plen));
    memcpy(buf + len, "PLAIN", 5); len += 5;
    buf[len++] = 0;
    memcpy(buf + len, user, strlen(user)); len += strlen(user);
    buf[len++] = 0;
    memcpy(buf + len, pass, strlen(pass)); len += strlen(pass);
  } else {
    len = (size_t)snprintf(buf, sizeof buf, "set %s 0 0 %zu\r\n%s\r\n", user, strlen(pass), pass);
  }
  send_all(fd, buf, len);
  ssize_t n = io_read(fd, buf, sizeof buf - 1);
  if (n <= 0 || (binary ? (buf[6] != 0 || buf[7] != 0) : strncmp(buf, "STORED\r\n", 8) != 0)) {
    fprintf(stderr, "authentication failed\n");
    exit(3);
  }
}

static size_t key_of(char *p, uint64_t n) { return (size_t)sprintf(p, "key:%llu", (unsigned long long)(n % keyspace)); }

/* A random key living on the connection's port (key n lives on port n % nports). */
static size_t random_key(char *p, const conn_t *c) {
  uint64_t per_port = (uint64_t)(keyspace / nports);
  if (per_port == 0) per_port = 1;
  return key_of(p, ((uint64_t)rand() % per_port) * (uint64_t)nports + (uint64_t)c->port_index);
}

/* Append one request to the connection's output; remembers whether it is a get. */
static void add_request(conn_t *c, int slot) {
  char key[32];
  char *p = c->out + c->out_len;
  int is_get = (c->counter % (uint64_t)(ratio + 1)) != 0;
  c->counter++;
  if (!is_get) {
    size_t klen = random_key(key, c);
    c->batch_sets++;
    if (binary) {
      p += bin_header(p, 0x01, (uint16_t)klen, 8, (uint32_t)(8 + klen + value_size));
      memset(p, 0, 8); p += 8;
      memcpy(p, key, klen); p += klen;
      memcpy(p, value, value_size); p += value_size;
    } else {
      p += meta ? sprintf(p, "ms %s %d\r\n", key, value_size)
                : sprintf(p, "set %s 0 0 %d\r\n", key, value_size);
      memcpy(p, value, value_size); p += value_size;
      *p++ = '\r'; *p++ = '\n';
    }
  } else if (meta) {
    c->batch_gets++;
    c->batch_keys++;
    p += sprintf(p, "mg ");
    p += random_key(p, c);
    p += sprintf(p, " v\r\n");
  } else if (binary) {
    size_t klen = random_key(key, c);
    c->batch_gets++;
    c->batch_keys++;
    p += bin_header(p, 0x00, (uint16_t)klen, 0, (uint32_t)klen);
    memcpy(p, key, klen); p += klen;
  } else {
    p += sprintf(p, "get");
    for (int i = 0; i < mget; i++) { *p++ = ' '; p += random_key(p, c); }
    c->batch_gets++;
    c->batch_keys += (uint64_t)mget;
    *p++ = '\r'; *p++ = '\n';
  }
  c->is_get[slot] = is_get;
  c->out_len = (size_t)(p - c->out);
}

static void start_batch(conn_t *c) {
  c->out_len = c->out_off = 0;
  c->batch_gets = c->batch_sets = c->batch_keys = c->batch_hits = 0;
  for (int i = 0; i < depth; i++) add_request(c, i);
  c->expected = depth;
  c->head = 0;
  c->started = now_us();
}

/* Consume whole replies from the input buffer; returns bytes consumed. */
static size_t parse_replies(conn_t *c) {
  size_t off = 0;
  while (c->expected > 0) {
    char *p = c->in + off;
    size_t avail = c->in_len - off;
    if (binary) {
      if (avail < 24) break;
      uint32_t blen = ((uint8_t)p[8] << 24) | ((uint8_t)p[9] << 16) | ((uint8_t)p[10] << 8) | (uint8_t)p[11];
      if (avail < 24 + blen) break;
      uint16_t status = ((uint8_t)p[6] << 8) | (uint8_t)p[7];
      if (status != 0 && status != 1) errors++;
      if (status == 0 && p[1] == 0x00) c->batch_hits++;
      off += 24 + blen;
    } else if (meta && c->is_get[c->head]) {
      /* VA <n>\r\n<data>\r\n, or EN\r\n */
      char *eol = memmem(p, avail, "\r\n", 2);
      if (!eol) break;
      size_t next = (size_t)(eol - p) + 2;
      if (strncmp(p, "VA ", 3) == 0) {
        next += (size_t)strtoul(p + 3, NULL, 10) + 2;
        if (next > avail) break;
        c->batch_hits++;
      } else if (strncmp(p, "EN", 2) != 0) {
        errors++;
      }
      off += next;
    } else if (c->is_get[c->head]) {
      /* VALUE k f n\r\n<data>\r\n ... END\r\n */
      size_t q = 0;
      int done = 0;
      while (q < avail) {
        char *eol = memmem(p + q, avail - q, "\r\n", 2);
        if (!eol) break;
        if (eol - (p + q) == 3 && memcmp(p + q, "END", 3) == 0) { q = (size_t)(eol - p) + 2; done = 1; break; }
        if (strncmp(p + q, "VALUE ", 6) != 0) { errors++; q = (size_t)(eol - p) + 2; done = 1; break; }
        c->batch_hits++;
        char *last = eol;
        while (last > p + q && last[-1] != ' ') last--;
        size_t n = (size_t)strtoul(last, NULL, 10);
        size_t next = (size_t)(eol - p) + 2 + n + 2;
        if (next > avail) break;
        q = next;
      }
      if (!done) break;
      off += q;
    } else {
      char *eol = memmem(p, avail, "\r\n", 2);
      if (!eol) break;
      if (strncmp(p, meta ? "HD" : "STORED", meta ? 2 : 6) != 0) errors++;
      off += (size_t)(eol - p) + 2;
    }
    c->expected--;
    c->head++;
  }
  return off;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: loadgen HOST PORT [options]\n"); return 2; }
  host = argv[1];
  for (char *tok = strtok(argv[2], ","); tok && nports < MAX_PORTS; tok = strtok(NULL, ",")) ports[nports++] = atoi(tok);
  if (nports == 0) { fprintf(stderr, "no port\n"); return 2; }
  int opt;
  optind = 3;
  while ((opt = getopt(argc, argv, "c:d:n:p:r:m:k:v:bMu:P:i:oRs")) != -1) {
    switch (opt) {
      case 'c': conns = atoi(optarg); break;
      case 'd': duration = atoi(optarg); break;
      case 'n': requests = atoi(optarg); break;
      case 'p': depth = atoi(optarg); break;
      case 'r': ratio = atoi(optarg); break;
      case 'm': mget = atoi(optarg); break;
      case 'k': keyspace = atoi(optarg); break;
      case 'v': value_size = atoi(optarg); break;
      case 'b': binary = 1; break;
      case 'M': meta = 1; break;
      case 'u': user = optarg; break;
      case 'P': pass = optarg; break;
      case 'i': idle = atoi(optarg); break;
      case 'o': preload_only = 1; break;
      case 'R': ready_line = 1; break;
      case 's': tls_setup(); break;
      default: return 2;
    }
  }
  if (depth < 1 || depth > 256 || mget < 1 || mget > 100 || conns < 1) { fprintf(stderr, "bad options\n"); return 2; }
  if (requests < 0 || requests % depth != 0) { fprintf(stderr, "-n must be a multiple of -p\n"); return 2; }
  if (binary && mget > 1) { fprintf(stderr, "multi-get is text only\n"); return 2; }
  value = malloc((size_t)value_size);
  memset(value, 'x', (size_t)value_size);
  samples = malloc(sizeof(double) * MAX_SAMPLES);
  srand(42);

  int *idle_fds = calloc((size_t)idle + 1, sizeof(int));
  for (int i = 0; i < idle; i++) { idle_fds[i] = dial(i % nports); if (user) login(idle_fds[i]); }

  /* Preload every key so gets hit: key n on port n % nports. */
  double preload_began = now_us();
  for (int port_index = 0; port_index < nports; port_index++) {
    int fd = dial(port_index);
    if (user) login(fd);
    conn_t pre = {.fd = fd, .out = malloc(BUF_SIZE), .in = malloc(BUF_SIZE)};
    for (int k = port_index; k < keyspace; k += 100 * nports) {
      pre.out_len = 0;
      int batch = 0;
      for (int j = k; j < k + 100 * nports && j < keyspace; j += nports, batch++) {
        char key[32];
        size_t klen = (size_t)sprintf(key, "key:%d", j);
        char *p = pre.out + pre.out_len;
        if (binary) {
          p += bin_header(p, 0x01, (uint16_t)klen, 8, (uint32_t)(8 + klen + value_size));
          memset(p, 0, 8); p += 8; memcpy(p, key, klen); p += klen;
          memcpy(p, value, value_size); p += value_size;
        } else {
          p += sprintf(p, "set %s 0 0 %d\r\n", key, value_size);
          memcpy(p, value, value_size); p += value_size; *p++ = '\r'; *p++ = '\n';
        }
        pre.out_len = (size_t)(p - pre.out);
        pre.is_get[batch] = 0;
      }
      send_all(fd, pre.out, pre.out_len);
      pre.expected = batch; pre.head = 0; pre.in_len = 0;
      while (pre.expected > 0) {
        ssize_t n = io_read(fd, pre.in + pre.in_len, BUF_SIZE - pre.in_len);
        if (n <= 0) { fprintf(stderr, "preload failed\n"); return 2; }
        pre.in_len += (size_t)n;
        size_t used = parse_replies(&pre);
        memmove(pre.in, pre.in + used, pre.in_len - used);
        pre.in_len -= used;
      }
    }
    if (tls_of[fd]) { SSL_free(tls_of[fd]); tls_of[fd] = NULL; }
    close(fd);
    free(pre.out);
    free(pre.in);
  }
  if (preload_only) {
    printf("{\"preloaded\": %d, \"seconds\": %.3f, \"errors\": %llu}\n", keyspace,
           (now_us() - preload_began) / 1e6, (unsigned long long)errors);
    return errors ? 1 : 0;
  }
  errors = 0;
  hits = 0;

  int ep = epoll_create1(0);
  conn_t *cs = calloc((size_t)conns, sizeof(conn_t));
  for (int i = 0; i < conns; i++) {
    conn_t *c = &cs[i];
    c->port_index = i % nports;
    c->fd = dial(c->port_index);
    if (user) login(c->fd);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->out = malloc(BUF_SIZE);
    c->in = malloc(BUF_SIZE);
    c->counter = (uint64_t)i;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  if (ready_line) { printf("ready\n"); fflush(stdout); }
  double begin = now_us(), end = begin + duration * 1e6;
  for (int i = 0; i < conns; i++) {
    start_batch(&cs[i]);
    send_all(cs[i].fd, cs[i].out, cs[i].out_len);
  }
  struct epoll_event events[256];
  double t = begin;
  int finished = 0;  /* connections done with their -n requests */
  while (t < end && (requests == 0 || finished < conns)) {
    int n = epoll_wait(ep, events, 256, 100);
    t = now_us();
    for (int i = 0; i < n; i++) {
      conn_t *c = events[i].data.ptr;
    more:;
      ssize_t got = io_read(c->fd, c->in + c->in_len, BUF_SIZE - c->in_len);
      if (got == 0) { fprintf(stderr, "server closed a connection\n"); return 4; }
      if (got < 0) { if (errno == EAGAIN) continue; perror("read"); return 4; }
      c->in_len += (size_t)got;
      size_t used = parse_replies(c);
      memmove(c->in, c->in + used, c->in_len - used);
      c->in_len -= used;
      if (c->expected == 0) {
        double latency = t - c->started;
        ops += (uint64_t)depth;
        gets += c->batch_gets;
        sets += c->batch_sets;
        keys_asked += c->batch_keys;
        hits += c->batch_hits;
        for (int s = 0; s < depth && n_samples < MAX_SAMPLES; s++) samples[n_samples++] = latency;
        c->done += (uint64_t)depth;
        if (requests != 0 && c->done >= (uint64_t)requests) {
          finished++;
        } else if (t < end) {
          start_batch(c);
          send_all(c->fd, c->out, c->out_len);
        }
      }
      if (io_pending(c->fd)) goto more;
    }
  }
  double seconds = (now_us() - begin) / 1e6;
  qsort(samples, n_samples, sizeof(double), compare_doubles);
  double p50 = n_samples ? samples[n_samples / 2] : 0, p99 = n_samples ? samples[(size_t)(n_samples * 0.99)] : 0;
  uint64_t key_ops = ops;
  printf("{\"ops\": %llu, \"seconds\": %.3f, \"ops_per_sec\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"errors\": %llu, "
         "\"gets\": %llu, \"sets\": %llu, \"keys\": %llu, \"hits\": %llu}\n",
         (unsigned long long)key_ops, seconds, key_ops / seconds, p50, p99, (unsigned long long)errors,
         (unsigned long long)gets, (unsigned long long)sets, (unsigned long long)keys_asked, (unsigned long long)hits);
  fflush(stdout);
  for (int i = 0; i < idle; i++) close(idle_fds[i]);
  return 0;
}
