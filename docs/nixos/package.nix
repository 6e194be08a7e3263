# tailhorizon's coredns as a Nix package, for services.tailhorizon.package:
#
#   pkgs.callPackage ./package.nix { src = ./tailhorizon; version = "v0.1.0"; }
#
# src is a checkout of the repository. The first build fails with the
# vendor hash it expected: put that in vendorHash. go.mod asks for Go
# 1.26.6 or newer; if nixpkgs' default Go is older, call it with a newer
# buildGoModule. The test suite only parses this file (test/recipes_test.go).
{ lib, buildGoModule, src, version ? "dev" }:

buildGoModule {
  pname = "tailhorizon";
  inherit version src;
  vendorHash = lib.fakeHash;
  subPackages = [ "cmd/coredns" ];
  env.CGO_ENABLED = "0";
  ldflags = [ "-s" "-w" "-X main.version=${version}" ];
  # The end-to-end tests need root and network namespaces; CI runs them.
  doCheck = false;
  meta = {
    description = "CoreDNS with the tailnet, mdns and fallback plugins";
    mainProgram = "coredns";
  };
}
