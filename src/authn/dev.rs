//! DEV ONLY token-signing keys and tokens: `accessgate dev-certs` writes the keys and the
//! JWKS the demo config trusts, `accessgate dev-token` mints tokens with them, and tests and
//! benches mint their own. Anyone holding these keys can mint tokens: never trust a dev
//! JWKS in production.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// File names inside the keys folder.
pub const RSA_KEY_FILE: &str = "dev-signing-rsa.pem";
pub const EC_KEY_FILE: &str = "dev-signing-ec.pem";
pub const JWKS_FILE: &str = "dev-jwks.json";
/// Default key ids, as published in `dev-jwks.json`.
pub const RSA_KID: &str = "dev-rsa-1";
pub const EC_KID: &str = "dev-ec-1";

/// The demo config's issuer and audience (`config/demo.toml`).
pub const DEMO_ISSUER: &str = "https://login.accessgate.dev/demo-tenant/v2.0";
pub const DEMO_AUDIENCE: &str = "api://accessgate-demo";

/// Errors loading keys or minting.
#[derive(Debug)]
pub struct DevError(pub String);

impl fmt::Display for DevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DevError {}

/// Signing algorithms dev tokens can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevAlg {
    #[default]
    RS256,
    ES256,
}

impl DevAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(Self::RS256),
            "ES256" => Some(Self::ES256),
            _ => None,
        }
    }
}

/// An RSA-2048 and a P-256 signing key with their key ids.
pub struct DevSigner {
    rsa: RsaKeyPair,
    rsa_kid: String,
    ec: EcdsaKeyPair,
    ec_kid: String,
}

impl fmt::Debug for DevSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevSigner")
            .field("rsa_kid", &self.rsa_kid)
            .field("ec_kid", &self.ec_kid)
            .finish_non_exhaustive()
    }
}

fn err(what: &str) -> impl Fn(aws_lc_rs::error::Unspecified) -> DevError + '_ {
    move |_| DevError(format!("{what} failed"))
}

impl DevSigner {
    /// Fresh keys in memory (tests, benches).
    pub fn generate(rsa_kid: &str, ec_kid: &str) -> Result<Self, DevError> {
        Ok(Self {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).map_err(err("RSA key generation"))?,
            rsa_kid: rsa_kid.to_owned(),
            ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(err("EC key generation"))?,
            ec_kid: ec_kid.to_owned(),
        })
    }

    /// The keys written by [`generate_signing_keys`], with the default kids.
    pub fn load(keys_dir: &Path) -> Result<Self, DevError> {
        let rsa_der = read_pem(&keys_dir.join(RSA_KEY_FILE))?;
        let ec_der = read_pem(&keys_dir.join(EC_KEY_FILE))?;
        Ok(Self {
            rsa: RsaKeyPair::from_pkcs8(&rsa_der)
                .map_err(|e| DevError(format!("{RSA_KEY_FILE}: not an RSA PKCS#8 key: {e}")))?,
            rsa_kid: RSA_KID.to_owned(),
            ec: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ec_der)
                .map_err(|e| DevError(format!("{EC_KEY_FILE}: not a P-256 PKCS#8 key: {e}")))?,
            ec_kid: EC_KID.to_owned(),
        })
    }

    pub fn kid(&self, alg: DevAlg) -> &str {
        match alg {
            DevAlg::RS256 => &self.rsa_kid,
            DevAlg::ES256 => &self.ec_kid,
        }
    }

    /// The public JWKS (`use: sig`, with `alg` and `kid`).
    pub fn jwks(&self) -> Value {
        let rsa = PublicKeyComponents::<Vec<u8>>::from(self.rsa.public_key());
        let point = self.ec.public_key().as_ref();
        // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
        let (x, y) = point
            .get(1..)
            .unwrap_or_default()
            .split_at(point.len().saturating_sub(1) / 2);
        json!({"keys": [
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.rsa_kid,
             "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e)},
            {"kty": "EC", "use": "sig", "alg": "ES256", "kid": self.ec_kid, "crv": "P-256",
             "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
        ]})
    }

    /// Sign `header` + `claims` as a compact JWS with `alg`. The header is used as given
    /// (tests craft hostile ones); `alg` picks the key and signature scheme only.
    pub fn sign(&self, alg: DevAlg, header: &Value, claims: &Value) -> Result<String, DevError> {
        let h = serde_json::to_vec(header).map_err(|e| DevError(e.to_string()))?;
        let c = serde_json::to_vec(claims).map_err(|e| DevError(e.to_string()))?;
        let mut out = URL_SAFE_NO_PAD.encode(h);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(c));
        let sig = self.signature(alg, out.as_bytes())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(out)
    }

    /// Raw signature over `message`.
    pub fn signature(&self, alg: DevAlg, message: &[u8]) -> Result<Vec<u8>, DevError> {
        let rng = SystemRandom::new();
        match alg {
            DevAlg::RS256 => {
                let mut sig = vec![0u8; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(err("RSA signing"))?;
                Ok(sig)
            }
            DevAlg::ES256 => Ok(self
                .ec
                .sign(&rng, message)
                .map_err(err("ECDSA signing"))?
                .as_ref()
                .to_vec()),
        }
    }

    /// Mint a token from options (header `{"alg","typ":"JWT","kid"}`).
    pub fn mint(&self, opts: &DevTokenOptions) -> Result<String, DevError> {
        let kid = opts.kid.as_deref().unwrap_or(self.kid(opts.alg));
        let header = json!({"alg": opts.alg.as_str(), "typ": "JWT", "kid": kid});
        self.sign(
            opts.alg,
            &header,
            &Value::Object(opts.claims(crate::clock::unix_now())),
        )
    }

    fn pkcs8(&self) -> Result<(Vec<u8>, Vec<u8>), DevError> {
        let rsa: Pkcs8V1Der<'static> = self.rsa.as_der().map_err(err("RSA key encoding"))?;
        let ec = self.ec.to_pkcs8v1().map_err(err("EC key encoding"))?;
        Ok((rsa.as_ref().to_vec(), ec.as_ref().to_vec()))
    }
}

/// Claims and header choices for [`mint`]. `Default` gives a valid demo token for an hour.
#[derive(Debug, Clone)]
pub struct DevTokenOptions {
    pub issuer: String,
    pub audience: String,
    /// `sub`.
    pub subject: String,
    pub oid: Option<String>,
    pub tid: Option<String>,
    /// `azp` (v2 tokens); put `appid` in `extra` for a v1-shaped token.
    pub azp: Option<String>,
    pub deviceid: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub acrs: Vec<String>,
    /// e.g. `["cp1"]` for a CAE-capable client.
    pub xms_cc: Vec<String>,
    pub scp: Option<String>,
    pub roles: Vec<String>,
    /// `jti`; `None` = a random one.
    pub jti: Option<String>,
    /// Added last: overrides any claim above (tests use it to set hostile values).
    pub extra: Map<String, Value>,
    pub expires_in: Duration,
    /// Overrides for `iat` / `auth_time` / `nbf` (unix seconds); default `iat` = now,
    /// `auth_time` = `iat`, no `nbf`.
    pub iat: Option<i64>,
    pub auth_time: Option<i64>,
    pub nbf: Option<i64>,
    /// Header `kid`; `None` = the default kid of `alg`.
    pub kid: Option<String>,
    pub alg: DevAlg,
}

impl Default for DevTokenOptions {
    fn default() -> Self {
        Self {
            issuer: DEMO_ISSUER.to_owned(),
            audience: DEMO_AUDIENCE.to_owned(),
            subject: "dev-user-subject".to_owned(),
            oid: Some("00000000-0000-0000-0000-0000000000a1".to_owned()),
            tid: None,
            azp: Some("0c1307d4-29d6-4389-a11c-5cbe7f65d7fa".to_owned()),
            deviceid: None,
            groups: Vec::new(),
            amr: vec!["pwd".to_owned()],
            acrs: Vec::new(),
            xms_cc: Vec::new(),
            scp: None,
            roles: Vec::new(),
            jti: None,
            extra: Map::new(),
            expires_in: Duration::from_secs(3600),
            iat: None,
            auth_time: None,
            nbf: None,
            kid: None,
            alg: DevAlg::RS256,
        }
    }
}

impl DevTokenOptions {
    /// The claims object, with times relative to `now`.
    pub fn claims(&self, now: i64) -> Map<String, Value> {
        let iat = self.iat.unwrap_or(now);
        let exp = now.saturating_add(i64::try_from(self.expires_in.as_secs()).unwrap_or(i64::MAX));
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.issuer));
        c.insert("aud".into(), json!(self.audience));
        c.insert("sub".into(), json!(self.subject));
        c.insert("iat".into(), json!(iat));
        c.insert("exp".into(), json!(exp));
        c.insert("auth_time".into(), json!(self.auth_time.unwrap_or(iat)));
        if let Some(n) = self.nbf {
            c.insert("nbf".into(), json!(n));
        }
        let opt = |c: &mut Map<String, Value>, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                c.insert(k.into(), json!(v));
            }
        };
        opt(&mut c, "oid", &self.oid);
        opt(&mut c, "tid", &self.tid);
        opt(&mut c, "azp", &self.azp);
        opt(&mut c, "deviceid", &self.deviceid);
        opt(&mut c, "scp", &self.scp);
        let list = |c: &mut Map<String, Value>, k: &str, v: &Vec<String>| {
            if !v.is_empty() {
                c.insert(k.into(), json!(v));
            }
        };
        list(&mut c, "groups", &self.groups);
        list(&mut c, "amr", &self.amr);
        list(&mut c, "acrs", &self.acrs);
        list(&mut c, "xms_cc", &self.xms_cc);
        list(&mut c, "roles", &self.roles);
        let jti = self.jti.clone().unwrap_or_else(random_id);
        c.insert("jti".into(), json!(jti));
        for (k, v) in &self.extra {
            c.insert(k.clone(), v.clone());
        }
        c
    }
}

/// Mint a token with the keys in `keys_dir` (see [`generate_signing_keys`]).
pub fn mint(opts: &DevTokenOptions, keys_dir: &Path) -> Result<String, DevError> {
    DevSigner::load(keys_dir)?.mint(opts)
}

/// Write `dev-signing-rsa.pem` (RSA-2048, PKCS#8), `dev-signing-ec.pem` (P-256, PKCS#8)
/// and `dev-jwks.json` (their public keys, kids `dev-rsa-1` / `dev-ec-1`) into `out_dir`.
pub fn generate_signing_keys(out_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let to_io = |e: DevError| io::Error::other(e.0);
    std::fs::create_dir_all(out_dir)?;
    let signer = DevSigner::generate(RSA_KID, EC_KID).map_err(to_io)?;
    let (rsa, ec) = signer.pkcs8().map_err(to_io)?;
    let rsa_path = out_dir.join(RSA_KEY_FILE);
    let ec_path = out_dir.join(EC_KEY_FILE);
    let jwks_path = out_dir.join(JWKS_FILE);
    write_private(&rsa_path, &pem("PRIVATE KEY", &rsa))?;
    write_private(&ec_path, &pem("PRIVATE KEY", &ec))?;
    let mut jwks = serde_json::to_string_pretty(&signer.jwks()).map_err(io::Error::other)?;
    jwks.push('\n');
    std::fs::write(&jwks_path, jwks)?;
    Ok(vec![rsa_path, ec_path, jwks_path])
}

fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    io::Write::write_all(&mut opts.open(path)?, contents.as_bytes())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn read_pem(path: &Path) -> Result<Vec<u8>, DevError> {
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject as _;
    PrivatePkcs8KeyDer::from_pem_file(path)
        .map(|k| k.secret_pkcs8_der().to_vec())
        .map_err(|e| DevError(format!("{}: {e}", path.display())))
}

fn random_id() -> String {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
#[path = "dev_tests.rs"]
mod tests;
