/// Keys made with openssl for the tests (never used anywhere else): P-256 (two), Ed25519 and RSA 2048, private and
/// public PEM; the JWKS entries are the two P-256 public keys, with kids `k1` and `k2`.
public enum TestKeys {
    public static let ecPrivate = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgI8EGQi07My7ZFyVz
        +daCItqOptXSUBq4q8awy7zFHZWhRANCAATGAKxzfziigCDgyETZSqDxiYctLWAT
        RUibu9ztXDWA30r9S6sXF1yVjzIoWC1CfM/qX+Ge5kxdtqwlnPgcKz4m
        -----END PRIVATE KEY-----
        """
    public static let ecPublic = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExgCsc384ooAg4MhE2Uqg8YmHLS1g
        E0VIm7vc7Vw1gN9K/UurFxdclY8yKFgtQnzP6l/hnuZMXbasJZz4HCs+Jg==
        -----END PUBLIC KEY-----
        """
    public static let ec2Private = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjRzwH2ZiP+D/zakX
        D1/AqKpEIwCHPSJ2jMg4rk65sbahRANCAAT6uZymR0b/ZZhK9FI2tBEODHMHIg6b
        HLSrshWzAPLsQ4f0NlK1qdGm6dWKSUwO24IxjGFkYt0q9bq/2vqtQCW/
        -----END PRIVATE KEY-----
        """
    public static let ec2Public = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+rmcpkdG/2WYSvRSNrQRDgxzByIO
        mxy0q7IVswDy7EOH9DZStanRpunViklMDtuCMYxhZGLdKvW6v9r6rUAlvw==
        -----END PUBLIC KEY-----
        """
    public static let edPrivate = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIAd3gpWKf1HI35MkDT6PV9UDygmnI5lskJRia6v2gvum
        -----END PRIVATE KEY-----
        """
    public static let edPublic = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEA2RGEfpltqkcpBIy2PK786LdsmVxs8Tv/CPa5KPP+vIk=
        -----END PUBLIC KEY-----
        """
    public static let rsaPrivate = """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDLYUJexphEvqtk
        NmNgCFDWsJBW4tluGxcgPUkXF6acGCwN7YqTT4sPsJB0ZxaN4r3gLqBXKuiUM5tZ
        0EI+bWcaWj4DXbMJmci9BWrBbWY0uCZ7h2Kb17QEOh5YlakQyWz8i39CJzKwaKVs
        Uag1mQaPErTNSlU8vFFdTfB1MbWn8FFv4QYvjF0cohyQv6WoqGuOwdNXvRnxsLLY
        90l9465M6dgZcIQgpnB5WmdenJozzPJld94gJRmBC1vNkwzhNgox600bQNsBkFIu
        VGBzoz5coLGPPQqGHtNWZeYUS0sFjIOB4hJgcudW//urC3R/C2NaB0eA46ncWwvx
        DxrJ0CmPAgMBAAECggEAPI/oPye9NQ9gIzXM7s5bICswuCbSH2cCwm9tgephiy7p
        g3Y+YzJ3EwN9aKRAA51G9Gh+B6b33hXmB18sMsHKR38i40a2J0A7lgn0acgFfOJv
        Vy6QDx8y9GVIHxHl5+FLSoLRsOXSQtTOmcxRHjDE0rr7yvv9GNptEi9A0O0uDmVJ
        57t2Lq1qTblFASL2N7PyfDc39cAVgeV41e6HUY/seYXolS+Y08D48o/2N6w5/hk0
        CTQfQYMf137PY0NjhEdx5gEFRY12B/7pf0yiUz5WvAyqYEY8ITfdqj5X3daAfsl3
        JZ/xUVrmDWBGK0fWr3utGfP428nJQIEt7XZQIs/bvQKBgQD0y0VzkpYsyS30uDIK
        a0rSQw3In0oUROD7WntrfjpDfYRRoFC1Kbzfo84wY5hcPlLBX66JGRSnj+Xskr4H
        bb3MhQkVmDatdWp8wRme3jMcTSlUa7Rt/4xrb2/Kxz+G+N9ZWuDQFWHGwtqahL9O
        YkAf1xFLbbPQzSLehuvAZbbT4wKBgQDUsKh7UhjkYPh8G/Pml7ZP1zBCJL4Xgkio
        3nfqWrw/T/IeyE0BbjifvEpmMjrjdi4I0wt49kS8Becy37tpZlbcQ2yhzDbXxVeQ
        M440C2XB1h+KkQNebT3UnUWqHk8dW63DK4kzAdIpw5vA9F7/471zGDh2I5a654hS
        RGN3BoX7ZQKBgE/RS8cAX/kga9ykhqSBEXd3p7HnxmbPgrBSc3W8RdElxxQ6erZn
        co9VQPDkOJSzOZaV1ToctHBiaiz2OAICFWXvZuPkqsdqRpuA9xKnDvFGc5h0OfO3
        5JhPUJtE1oDy+xiOmkke/6+ob1D8wcgUHyaCoMAAeCY4DQuT4KDuSWvTAoGBAMbE
        fgAZ/ldYZICgIvUqbV/6LAh0jA4uXLcsiYbD20+T6CNqb8TZfCOT9TfC05QFuwnW
        Kc+W3y+UmLfLrTrYQG7CuEAROGO38pg6BjiPOj7HXFzEHxDdKL6NaDCO+MLoDeDq
        y+KWXhFX1DSkbC/aZw+r4ABQTCpJ/PVdIlN3DjmdAoGAHHL/h7hN/n4+Not+GtWs
        P8pEg3dyvQxolxxKQ9Ve6oNM0Fm8HHcM5Rsp375t31hFZ966CdfmdleTpWlhaz5e
        qhoirSt9BFhP4JIl2BYdkOul8xyEq/sreHEs+XVfOWkqpu1zQj03cjNLktJ4SpDM
        OSx4EBg35RXfGlD9Y39s/ng=
        -----END PRIVATE KEY-----
        """
    public static let rsaPublic = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAy2FCXsaYRL6rZDZjYAhQ
        1rCQVuLZbhsXID1JFxemnBgsDe2Kk0+LD7CQdGcWjeK94C6gVyrolDObWdBCPm1n
        Glo+A12zCZnIvQVqwW1mNLgme4dim9e0BDoeWJWpEMls/It/QicysGilbFGoNZkG
        jxK0zUpVPLxRXU3wdTG1p/BRb+EGL4xdHKIckL+lqKhrjsHTV70Z8bCy2PdJfeOu
        TOnYGXCEIKZweVpnXpyaM8zyZXfeICUZgQtbzZMM4TYKMetNG0DbAZBSLlRgc6M+
        XKCxjz0Khh7TVmXmFEtLBYyDgeISYHLnVv/7qwt0fwtjWgdHgOOp3FsL8Q8aydAp
        jwIDAQAB
        -----END PUBLIC KEY-----
        """
    public static let ecJWK =
        #"{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": "xgCsc384ooAg4MhE2Uqg8YmHLS1gE0VIm7vc7Vw1gN8", "y": "Sv1LqxcXXJWPMihYLUJ8z-pf4Z7mTF22rCWc-BwrPiY"}"#
    public static let ec2JWK =
        #"{"kty": "EC", "crv": "P-256", "kid": "k2", "alg": "ES256", "use": "sig", "x": "-rmcpkdG_2WYSvRSNrQRDgxzByIOmxy0q7IVswDy7EM", "y": "h_Q2UrWp0abp1YpJTA7bgjGMYWRi3Sr1ur_a-q1AJb8"}"#
}
