//! Test-only RSA keys for the WeChat Pay scheme, generated once with OpenSSL 3.0:
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` (and 1024 for the short key),
//! public halves with `openssl pkey -pubout` / `openssl rsa -RSAPublicKey_out`. They protect nothing.

/// Key A, private, PKCS#8 (`BEGIN PRIVATE KEY`), 2048 bits.
pub(crate) const A_PRIVATE_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCwZpOvvMTjtFbN
jrqrRvUfhoM0jrCnkZVqMacredTkpzCntlcLPsMrraNyFvA0S4byrtCU+qeAMziS
WAvojg+uBuFQ4FVZLom3TFPFLTizhE+xl0IX3itANsf39Q2LuoMINO0VWDV7sYJH
egvUQI1FkZlASw350C/f46Or7v5hgsuJ7RHFSM4YXxvmieEw2dZimZkwObZYUaOp
qGNj1skWUxLCgPZqDSfzMsV47KL6jowME1IPhNfHXeR6hmvXZTH+tm0Ry7Lm69Vb
1FL6HY88gl9XBWK3tBpV35rBCQ1k/mKC1xh1AXcK8jW7ZR+2lcEYhm+toP2Z+prR
053khr5VAgMBAAECggEAEqvM0oNTwLlIHcpPck0YqW1Sqme3BYmIi9y1Eco7sTcM
FJhddrx+KnueyvboFlTvM/UycS5lt9FUGdNVcVhGCxjB1Q5lokKlg4AB9uMeNwwY
Zlb5AS88GzghKtrmg+VqNJ5rgMCdKppDjJ67rUvm2Bf85Vv8XvZ89sDwxERP6xCg
vRLVwzucRc0CTTBrti9Wq9cqnJPUIwU2ipguoWxWh4WP5kuzcOzBEt5oSc5v00p/
r46sSPYwSzGTld9J1Uk5yHe1sU3iXdTkVbxwAmcU+Z9ynHHUYOAMurRYLVkUJmJ9
23S9XeJAKyZq8krBCT3l+3+3Etrv5uTNGlndkZ0ruQKBgQDg8btXysDEwJ+fdXUR
6T4Nm3UtksqGxcSce9KTr1x7i532d2o8VwNtVnEzdckNqvX+tUA6PgJqfm9DxQY4
TPPjZLBKLqe+PrJaquwigeqiUgjsYuJsZEP/NfzVSvctiNhqOj6FdI1P0K8DISY5
Ak8kv698modtSvuBQ8qZ0L2zWQKBgQDIwSfs0AfnCv5uzqn0imB5ZenAqZsc+lxU
azo7AIfZRzR9m4dL5j8oduR1SHv01LDPBx1/xkXdow8FHFKNN4iZx20tlHcylbUK
N/piNGtzJl+3utpnjULkw3RuGajmCJ0NkgYfq1/YKZshFVpfvkB1MdoALraq5UQF
E4McB4FvXQKBgQDMlI1iJxBy4Q1LpTO3+n1pOr2zmRGAyVUrTKITlyVxZ2VexvRj
tG91fWyu9KzKNXZNFOM5FTR1TlA7PnGNus8FPInorc35hGQJefIQ4D9ZKWrcMoLj
Ob1t2tf71JZBX3gUBKzgC0SKFq1VF00ABE2eioc7t/77M3rR8anNgr9E4QKBgGRw
p14HEv0YdgXQZh3QIcZ7I8Fd2hpcdFdUMpUUheNCidOSPdXOg6jmGxVGx6XNyAw8
fhjQhWIHU9t1uSOoNjLiIRCd6Ckp16MeMKpzmZLKDzeoR99pQJ+d3qG7OtKkWpdQ
iLnNjy1iW5fozAd881jvMSfIN2I3RJnZkk4yvyKNAoGBAN1oD5Ki8KhTH8wXrBZI
G5WT9o5keKwNeDcjAeufe8EvYaUihciu53EPwpV+oYGaZB7NFe4Fbt8/m15L+4S3
KtjQ6QagE2mNszv15IOGtDG4Tp0PCNhnrnxUb3e60/FCTrW65rAkyiK2WtfpZbLO
5FpTrAvZoycnwF+fPUrhk2Hb
-----END PRIVATE KEY-----
";

/// Key A, public, SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`): how WeChat Pay hands out its public key.
pub(crate) const A_PUBLIC_SPKI: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsGaTr7zE47RWzY66q0b1
H4aDNI6wp5GVajGnK3nU5Kcwp7ZXCz7DK62jchbwNEuG8q7QlPqngDM4klgL6I4P
rgbhUOBVWS6Jt0xTxS04s4RPsZdCF94rQDbH9/UNi7qDCDTtFVg1e7GCR3oL1ECN
RZGZQEsN+dAv3+Ojq+7+YYLLie0RxUjOGF8b5onhMNnWYpmZMDm2WFGjqahjY9bJ
FlMSwoD2ag0n8zLFeOyi+o6MDBNSD4TXx13keoZr12Ux/rZtEcuy5uvVW9RS+h2P
PIJfVwVit7QaVd+awQkNZP5igtcYdQF3CvI1u2UftpXBGIZvraD9mfqa0dOd5Ia+
VQIDAQAB
-----END PUBLIC KEY-----
";

/// Key A, public, PKCS#1 (`BEGIN RSA PUBLIC KEY`).
pub(crate) const A_PUBLIC_PKCS1: &str = "\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAsGaTr7zE47RWzY66q0b1H4aDNI6wp5GVajGnK3nU5Kcwp7ZXCz7D
K62jchbwNEuG8q7QlPqngDM4klgL6I4PrgbhUOBVWS6Jt0xTxS04s4RPsZdCF94r
QDbH9/UNi7qDCDTtFVg1e7GCR3oL1ECNRZGZQEsN+dAv3+Ojq+7+YYLLie0RxUjO
GF8b5onhMNnWYpmZMDm2WFGjqahjY9bJFlMSwoD2ag0n8zLFeOyi+o6MDBNSD4TX
x13keoZr12Ux/rZtEcuy5uvVW9RS+h2PPIJfVwVit7QaVd+awQkNZP5igtcYdQF3
CvI1u2UftpXBGIZvraD9mfqa0dOd5Ia+VQIDAQAB
-----END RSA PUBLIC KEY-----
";

/// Key B, public: a different 2048-bit key, for the wrong-key test.
pub(crate) const B_PUBLIC_SPKI: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3tpvy5Dlb1huzVAyL2d1
ZMJFNOBMGaft/FXlVlNLwNjDSwbobdq92G+Wh+GPIHB7hIGA6RaKe3eM3xdJct04
CqwM+V9upEB+F1iZCsfjuXSlaPE7LDLD4yssOChO3KomVDRscgq87aXiKJsTuUZF
U82Neg0ahlwQbbYNLiyrfkvYo8+4mwYnn14o64HkrEQo6Mrg4e4cETEBVbeadJTW
QW+0s3npZk5bh8xbqzoNe3akxJ5fHu5JiKzBiKfpGbdlbsSq1l9XT2qro1GIHgVX
0I8tPeEgY1I5dXnqPTrWTMLdgPtFvNg6iOkyM3quu92rHRtrgadPtK/9QUiO26j0
KQIDAQAB
-----END PUBLIC KEY-----
";

/// A 1024-bit public key: too short to be accepted.
pub(crate) const SHORT_PUBLIC_SPKI: &str = "\
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDOgpZaR1hSo64gENUv2rwF3+2g
PjpKb93mVoZF+OGlzvMO8nbBTYaGMH1wvgEn2KkI337AFM+kov1uroJQMa9eFKWA
HJod0Mvq9mW2XAdRbHxtqRosp1dYoGPGjzaVj6aDdXXcdXS+OErHmbM/aKEAH+N1
kQd6yuidGDYueIpBCwIDAQAB
-----END PUBLIC KEY-----
";
