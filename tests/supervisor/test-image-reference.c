/* Unit tests for supervisor/image-reference: the cases of
 * distribution/reference's own tests (normalize_test.go, reference_test.go)
 * as ParseNormalizedNamed + TagNameOnly see them. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "image-reference.h"

#define HEX64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define DGST "sha256:" HEX64

struct ok_case {
        const char *in;
        const char *domain, *path, *tag, *digest;
        const char *full;
};

static const struct ok_case ok_cases[] = {
        { "busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest" },
        { "debian", "docker.io", "library/debian", "latest", "", NULL },
        { "library/debian", "docker.io", "library/debian", "latest", "", NULL },
        { "docker/docker", "docker.io", "docker/docker", "latest", "", NULL },
        { "docker.io/docker/docker", "docker.io", "docker/docker", "latest", "", NULL },
        { "docker.io/debian", "docker.io", "library/debian", "latest", "", NULL },
        { "docker.io/library/debian", "docker.io", "library/debian", "latest", "", NULL },
        { "index.docker.io/docker/docker", "docker.io", "docker/docker", "latest", "", NULL },
        { "index.docker.io/debian", "docker.io", "library/debian", "latest", "", NULL },
        { "docker.io/library/foo/bar", "docker.io", "library/foo/bar", "latest", "", NULL },
        { "store/foo/bar", "docker.io", "store/foo/bar", "latest", "", NULL },
        { "127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", "latest", "", NULL },
        { "127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", "latest", "", NULL },
        { "192.168.0.1", "docker.io", "library/192.168.0.1", "latest", "", NULL },
        { "192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", "", NULL },
        { "192.168.0.1:8/debian", "192.168.0.1:8", "debian", "latest", "", NULL },
        { "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io",
          "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest", "", NULL },
        { "[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", "latest", "", NULL },
        { "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "latest", "",
          NULL },
        { "[2001:db8::1]/repo", "[2001:db8::1]", "repo", "latest", "", NULL },
        { "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker.io",
          "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "latest", "", NULL },
        { "Docker/docker", "Docker", "docker", "latest", "", "Docker/docker:latest" },
        { "FOO/bar", "FOO", "bar", "latest", "", NULL },
        { "localhost/foo", "localhost", "foo", "latest", "", "localhost/foo:latest" },
        { "localhost:5000/ns/repo:tag", "localhost:5000", "ns/repo", "tag", "", "localhost:5000/ns/repo:tag" },
        { "test_com/foo", "docker.io", "test_com/foo", "latest", "", NULL },
        { "test.com:8080/foo", "test.com:8080", "foo", "latest", "", NULL },
        { "test-com:8080/foo", "test-com:8080", "foo", "latest", "", NULL },
        { "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "latest", "", NULL },
        { "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", "", NULL },
        { "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
          "test.example.com", "", NULL },
        { "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", "",
          NULL },
        { "docker-rules/docker", "docker.io", "docker-rules/docker", "latest", "", NULL },
        { "docker---rules/docker", "docker.io", "docker---rules/docker", "latest", "", NULL },
        { "dock__er/docker", "docker.io", "dock__er/docker", "latest", "", NULL },
        { "d/docker", "docker.io", "d/docker", "latest", "", NULL },
        { "jess/t", "docker.io", "jess/t", "latest", "", NULL },
        { "lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", "", NULL },
        { "foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", "", NULL },
        { "test:5000/repo", "test:5000", "repo", "latest", "", NULL },
        { "test:5000/repo@" DGST, "test:5000", "repo", "", DGST, "test:5000/repo@" DGST },
        { "test:5000/repo:tag@" DGST, "test:5000", "repo", "tag", DGST, "test:5000/repo:tag@" DGST },
        { "[2001:db8::1]:5000/repo:tag@" DGST, "[2001:db8::1]:5000", "repo", "tag", DGST, NULL },
        { "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", "docker.io",
          "library/redis", "", "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
          "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c" },
        { "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa", "docker.io",
          "library/busybox", "latest", "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa",
          "docker.io/library/busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa" },
        { "xn--7o8h.com/myimage:xn--7o8h.com@sha512:"
          "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
          "xn--7o8h.com", "myimage", "xn--7o8h.com",
          "sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
          NULL },
        { "dbcc1", "docker.io", "library/dbcc1", "latest", "", NULL },
        /* 63 hex digits is a name, not an identifier */
        { "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "docker.io",
          "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "latest", "", NULL },
};

static void test_valid(void **state)
{
        (void) state;
        for (size_t i = 0; i < ARRAY_SIZE(ok_cases); i++) {
                const struct ok_case *c = &ok_cases[i];
                struct image_ref r;
                struct berr e = { 0 };
                if (image_ref_parse(c->in, &r, &e) < 0)
                        fail_msg("\"%s\" refused: %s", c->in, e.msg);
                if (strcmp(r.domain, c->domain) || strcmp(r.path, c->path) || strcmp(r.tag, c->tag) ||
                    strcmp(r.digest, c->digest))
                        fail_msg("\"%s\" → domain \"%s\" path \"%s\" tag \"%s\" digest \"%s\"", c->in, r.domain,
                                 r.path, r.tag, r.digest);
                if (c->full) {
                        char buf[IMAGE_REF_STRING_MAX];
                        assert_string_equal(image_ref_string(&r, buf, sizeof(buf)), c->full);
                }
        }
}

struct bad_case {
        const char *in;
        const char *msg_part;   /* must appear in the message */
};

static const struct bad_case bad_cases[] = {
        { "", "at least one component" },
        { "https://github.com/docker/docker", "invalid reference format" },
        { "docker/Docker", "must be lowercase" },
        { "docker.io/docker/Docker", "must be lowercase" },
        { "Uppercase:tag", "must be lowercase" },
        { "test:5000/Uppercase/lowercase:tag", "must be lowercase" },
        { "-docker", "invalid reference format" },
        { "-docker/docker", "invalid reference format" },
        { "-docker.io/docker/docker", "invalid reference format" },
        { "docker-/docker", "invalid reference format" },
        { "-docker-/docker", "invalid reference format" },
        { "docker///docker", "invalid reference format" },
        { "docker.io/docker///docker", "invalid reference format" },
        { "____/____", "invalid reference format" },
        { "_docker/_docker", "invalid reference format" },
        { "dock..er/docker", "invalid reference format" },
        { "dock_.er/docker", "invalid reference format" },
        { "dock-.er/docker", "invalid reference format" },
        { "docker/", "invalid reference format" },
        { "[fc00::1]", "invalid reference format" },
        { "[fc00::1]:5000", "invalid reference format" },
        { "fc00::1:5000/debian", "invalid reference format" },
        { "[fe80::1%eth0]:5000/debian", "invalid reference format" },
        { "[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid reference format" },
        { "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "64-byte hexadecimal" },
        { ":justtag", "invalid reference format" },
        { "@" DGST, "invalid reference format" },
        { "repo@sha256:ffffffffffffffffffffffffffffffffff", "needs 64 hex digits" },
        { "validname@invaliddigest:" HEX64, "unsupported digest algorithm" },
        { "repo@sha256:" "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "lower-case" },
        { "repo@sha256", "invalid digest format" },
        { "aa/asdf$$^/aa", "invalid reference format" },
        { "repo:-tag", "bad tag" },
        { "repo:.tag", "bad tag" },
        { "repo:tag:tag", "bad tag" },
        { "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_"
          "because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_"
          "than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
          "more than 255 characters" },
};

static void test_invalid(void **state)
{
        (void) state;
        for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
                struct image_ref r;
                struct berr e = { 0 };
                int k = image_ref_parse(bad_cases[i].in, &r, &e);
                if (k != -EINVAL)
                        fail_msg("\"%s\" accepted (%d) as %s/%s:%s", bad_cases[i].in, k, r.domain, r.path, r.tag);
                if (!strstr(e.msg, bad_cases[i].msg_part))
                        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad_cases[i].in, e.msg, bad_cases[i].msg_part);
        }
}

static char *repeat(const char *s, int n, const char *suffix)
{
        size_t len = strlen(s) * (size_t) n + strlen(suffix) + 1;
        char *p = malloc(len);
        assert_non_null(p);
        p[0] = '\0';
        for (int i = 0; i < n; i++)
                strcat(p, s);
        strcat(p, suffix);
        return p;
}

/* The whole name, registry included, is at most 255 characters; a long tag
 * does not count. */
static void test_lengths(void **state)
{
        (void) state;
        struct image_ref r;
        struct berr e = { 0 };

        /* "localhost/" (10) + 245 = 255 */
        char *ok = repeat("a/", 122, "a:tag-puts-this-over-max");
        char *in = NULL;
        assert_true(asprintf(&in, "localhost/%s", ok) > 0);
        assert_int_equal(image_ref_parse(in, &r, &e), 0);
        assert_int_equal(strlen(r.domain) + 1 + strlen(r.path), 255);
        assert_string_equal(r.tag, "tag-puts-this-over-max");
        free(in);
        free(ok);

        char *bad = repeat("a/", 128, "a:tag");
        assert_int_equal(image_ref_parse(bad, &r, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "more than 255"));
        free(bad);

        char *tag128 = repeat("t", 128, "");
        char *tag129 = repeat("t", 129, "");
        assert_true(asprintf(&in, "repo:%s", tag128) > 0);
        assert_int_equal(image_ref_parse(in, &r, &e), 0);
        assert_int_equal(strlen(r.tag), 128);
        free(in);
        assert_true(asprintf(&in, "repo:%s", tag129) > 0);
        assert_int_equal(image_ref_parse(in, &r, &e), -EINVAL);
        free(in);
        free(tag128);
        free(tag129);
}

static void test_helpers(void **state)
{
        (void) state;
        struct image_ref r;
        assert_int_equal(image_ref_parse("busybox", &r, NULL), 0);
        assert_string_equal(image_ref_registry_host(&r), "registry-1.docker.io");
        assert_string_equal(image_ref_object(&r), "latest");
        assert_int_equal(image_ref_parse("127.0.0.1:5000/a/b:v1@" DGST, &r, NULL), 0);
        assert_string_equal(image_ref_registry_host(&r), "127.0.0.1:5000");
        assert_string_equal(image_ref_object(&r), DGST);
        assert_int_equal(image_ref_check_digest(DGST, NULL), 0);
        assert_int_equal(image_ref_check_digest("sha256:abc", NULL), -EINVAL);
        /* NULL berr is allowed for errors */
        assert_int_equal(image_ref_parse("UPPER", &r, NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_lengths),
                cmocka_unit_test(test_helpers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
